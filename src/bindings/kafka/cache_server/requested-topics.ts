import { Counter, Gauge, type Registry } from 'prom-client';
import { KgateError } from '../../../engine/errors.ts';

/**
 * The bound on topics that requests make a cache_server follow. A route whose `topic` is made of
 * path parameters lets a client name any topic, and each one followed costs a metadata refresh
 * loop, fetch sessions and memory; without a bound a client walking names would have kgate follow
 * them all. Bootstrap topics are the config's own and do not count.
 */

/** What the bound looks at of a followed topic. */
export interface RequestedFollower {
  readonly name: string;
  readonly bootstrap: boolean;
  readonly attachments: number;
  readonly stopped: boolean;
}

export const DEFAULT_REQUESTED_TOPICS = 1000;

interface Source {
  readonly binding: string;
  readonly count: () => number;
}

const sourcesByRegistry = new WeakMap<Registry, Set<Source>>();

function refusedCounter(registry: Registry): Counter<'binding'> {
  const name = 'kgate_cache_requested_topics_refused_total';
  const existing = registry.getSingleMetric(name);
  if (existing !== undefined) return existing as Counter<'binding'>;
  return new Counter({
    name,
    help: 'Requests for a topic a cache_server did not follow, refused because it followed limits.requested-topics topics for requests, each in use',
    labelNames: ['binding'],
    registers: [registry],
  });
}

function register(registry: Registry, source: Source): Set<Source> {
  let sources = sourcesByRegistry.get(registry);
  if (sources === undefined) {
    const set = new Set<Source>();
    sources = set;
    sourcesByRegistry.set(registry, set);
    if (registry.getSingleMetric('kgate_cache_requested_topics') === undefined)
      new Gauge({
        name: 'kgate_cache_requested_topics',
        help: 'Topics a cache_server follows because requests asked for them (bootstrap topics not counted)',
        labelNames: ['binding'],
        registers: [registry],
        collect() {
          this.reset();
          for (const s of set) this.set({ binding: s.binding }, s.count());
        },
      });
  }
  sources.add(source);
  return sources;
}

export class RequestedTopics {
  readonly #binding: string;
  readonly #limit: number;
  readonly #followers: ReadonlyMap<string, RequestedFollower>;
  readonly #refused: Counter<'binding'>;
  readonly #sources: Set<Source>;
  readonly #source: Source;

  constructor(
    binding: string,
    limit: number,
    followers: ReadonlyMap<string, RequestedFollower>,
    registry: Registry,
  ) {
    this.#binding = binding;
    this.#limit = limit;
    this.#followers = followers;
    this.#refused = refusedCounter(registry);
    this.#source = { binding, count: () => this.count() };
    this.#sources = register(registry, this.#source);
  }

  /** Topics followed for requests now. */
  count(): number {
    let n = 0;
    for (const f of this.#followers.values()) if (!f.bootstrap && !f.stopped) n++;
    return n;
  }

  /**
   * Makes room to follow `topic` for a request: nothing to do when it is followed already or the
   * bound is not reached; else the least recently used topic no request holds (one lingering
   * after its last reader) is let go through `unfollow`. With every one of them in use, refuses
   * with KGATE_TOPIC_LIMIT (503, retriable: a topic is freed when its last reader leaves).
   */
  admit(topic: string, lastUsed: ReadonlyMap<string, number>, unfollow: (name: string) => void): void {
    const known = this.#followers.get(topic);
    if (known !== undefined && !known.stopped) return;
    if (this.count() < this.#limit) return;
    let victim: string | undefined;
    let oldest = Infinity;
    for (const f of this.#followers.values()) {
      if (f.bootstrap || f.stopped || f.attachments > 0) continue;
      const used = lastUsed.get(f.name) ?? 0;
      if (used < oldest) {
        oldest = used;
        victim = f.name;
      }
    }
    if (victim !== undefined) {
      unfollow(victim);
      return;
    }
    this.#refused.inc({ binding: this.#binding });
    throw new KgateError(
      'KGATE_TOPIC_LIMIT',
      `binding ${this.#binding} follows ${this.#limit} topics for requests (limits.requested-topics), each in use`,
    );
  }

  close(): void {
    this.#sources.delete(this.#source);
  }
}
