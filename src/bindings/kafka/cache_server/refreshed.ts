interface Entry<V> {
  value: V;
  at: number;
}

interface Loading<V> {
  readonly promise: Promise<V>;
  readonly since: number;
}

export interface RefreshedGetOptions {
  /** Answer an expired value at once and refresh it in the background. */
  readonly stale?: boolean;
  /**
   * Wait at most this long for the refresh of an expired value, then answer the expired one; at
   * once when a refresh has been under way that long already (the broker is not answering).
   */
  readonly waitMs?: number;
  /** Older than this counts as expired for this call (default: the instance's maxAgeMs). */
  readonly maxAgeMs?: number;
}

/**
 * Values asked of the broker (a topic's config, its partitions) kept for `maxAgeMs`. Callers
 * asking for the same key while it is being loaded share that one request, so a burst of first
 * produces to a topic costs one Metadata or DescribeConfigs request, not one each. `get` with
 * `stale` answers an expired value at once and refreshes it in the background, so that the
 * produce path never waits for a refresh; with `waitMs` it waits that long for the refresh;
 * without either an expired value is reloaded first.
 */
export class Refreshed<V> {
  readonly #maxAgeMs: number;
  readonly #maxEntries: number;
  /** In the order they were last loaded, oldest first. */
  readonly #entries = new Map<string, Entry<V>>();
  readonly #loading = new Map<string, Loading<V>>();

  /**
   * `maxEntries` bounds the values kept: keys can come from requests (a topic named by a path),
   * so past it the value loaded longest ago is forgotten, to be asked for again if wanted.
   */
  constructor(maxAgeMs: number, maxEntries = Infinity) {
    this.#maxAgeMs = maxAgeMs;
    this.#maxEntries = maxEntries;
  }

  /** Values kept now. */
  get size(): number {
    return this.#entries.size;
  }

  /** The value as last loaded, however old; undefined if never loaded. */
  peek(key: string): { readonly value: V; readonly at: number } | undefined {
    return this.#entries.get(key);
  }

  /**
   * The value, loaded by `load` when missing or expired. A failed reload answers the expired
   * value if there is one (a stale config serves better than none); otherwise it rejects.
   */
  get(key: string, load: () => Promise<V>, options: RefreshedGetOptions = {}): Promise<V> {
    const entry = this.#entries.get(key);
    const maxAgeMs = options.maxAgeMs ?? this.#maxAgeMs;
    if (entry !== undefined && Date.now() - entry.at < maxAgeMs) return Promise.resolve(entry.value);
    const loading = this.#loading.get(key) ?? this.#load(key, load);
    if (entry === undefined) return loading.promise;
    if (options.stale === true) return Promise.resolve(entry.value);
    const answered = loading.promise.catch(() => entry.value);
    const waitMs = options.waitMs;
    if (waitMs === undefined) return answered;
    const left = loading.since + waitMs - Date.now();
    if (left <= 0) return Promise.resolve(entry.value);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<V>((resolve) => {
      timer = setTimeout(() => resolve(entry.value), left);
    });
    return Promise.race([answered, late]).finally(() => clearTimeout(timer));
  }

  /** Forgets the value, so that the next get() loads it. */
  delete(key: string): void {
    this.#entries.delete(key);
  }

  #load(key: string, load: () => Promise<V>): Loading<V> {
    const promise = load().then((value) => {
      this.#entries.delete(key);
      this.#entries.set(key, { value, at: Date.now() });
      if (this.#entries.size > this.#maxEntries) {
        const oldest = this.#entries.keys().next();
        if (oldest.done !== true) this.#entries.delete(oldest.value);
      }
      return value;
    });
    const loading = { promise, since: Date.now() };
    this.#loading.set(key, loading);
    const done = (): void => {
      this.#loading.delete(key);
    };
    promise.then(done, done);
    // A background refresh nobody awaits must not surface as an unhandled rejection.
    promise.catch(() => undefined);
    return loading;
  }
}
