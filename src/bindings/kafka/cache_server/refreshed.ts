interface Entry<V> {
  value: V;
  at: number;
}

/**
 * Values asked of the broker (a topic's config, its partition count) kept for `maxAgeMs`. Callers
 * asking for the same key while it is being loaded share that one request, so a burst of first
 * produces to a topic costs one Metadata or DescribeConfigs request, not one each. `get` with
 * `stale` answers an expired value at once and refreshes it in the background, so that the
 * produce path never waits for a refresh; without it an expired value is reloaded first.
 */
export class Refreshed<V> {
  readonly #maxAgeMs: number;
  readonly #entries = new Map<string, Entry<V>>();
  readonly #loading = new Map<string, Promise<V>>();

  constructor(maxAgeMs: number) {
    this.#maxAgeMs = maxAgeMs;
  }

  /** The value as last loaded, however old; undefined if never loaded. */
  peek(key: string): { readonly value: V; readonly at: number } | undefined {
    return this.#entries.get(key);
  }

  /**
   * The value, loaded by `load` when missing or expired. A failed reload answers the expired
   * value if there is one (a stale config serves better than none); otherwise it rejects.
   */
  get(key: string, load: () => Promise<V>, options: { readonly stale?: boolean } = {}): Promise<V> {
    const entry = this.#entries.get(key);
    if (entry !== undefined && Date.now() - entry.at < this.#maxAgeMs) return Promise.resolve(entry.value);
    const loading = this.#loading.get(key) ?? this.#load(key, load);
    if (entry !== undefined && options.stale === true) return Promise.resolve(entry.value);
    return entry === undefined ? loading : loading.catch(() => entry.value);
  }

  #load(key: string, load: () => Promise<V>): Promise<V> {
    const loading = load().then((value) => {
      this.#entries.set(key, { value, at: Date.now() });
      return value;
    });
    this.#loading.set(key, loading);
    const done = (): void => {
      this.#loading.delete(key);
    };
    loading.then(done, done);
    // A background refresh nobody awaits must not surface as an unhandled rejection.
    loading.catch(() => undefined);
    return loading;
  }
}
