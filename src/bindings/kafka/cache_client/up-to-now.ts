// What reading a topic "up to now" means: where a fetch's snapshot ends, what a key lookup answers
// as of, and where a conditional request's wait begins. The head reader (a stream read up to now)
// and the key lookup (the stores read directly) keep this one rule, so that a GET answered either
// way hands out the same progress for the same state of the cache.

import type { PartitionStore } from '../cache/index.ts';
import type { CachedTopic } from '../cache_server/api.ts';
import type { Isolation } from './stream.ts';

/**
 * The offset up to which a reader may read the partition now: the store's next offset, and for
 * read_committed no further than the last stable offset (past it, transactions are undecided).
 */
export function visibleEnd(store: PartitionStore, isolation: Isolation): bigint {
  if (isolation === 'read_uncommitted') return store.nextOffset;
  const lso = store.lastStableOffset;
  return lso < store.nextOffset ? lso : store.nextOffset;
}

/** Where the broker's log ended as the cache last heard, for what a reader with `isolation` may read. */
function brokerEnd(store: PartitionStore, isolation: Isolation): bigint {
  return isolation === 'read_uncommitted' ? store.highWatermark : store.lastStableOffset;
}

/**
 * "Now" for one read of a topic, taken when the read begins. A read is caught up when, for every
 * partition of the topic:
 *   - the partition is ready (fetched) in the cache, and
 *   - the read has reached the broker's end offset as the cache knew it when the partition was
 *     first seen ready (high watermark, or last stable offset for read_committed), and the end of
 *     what was produced through the cache_server by then (`producedEnd`, so whoever was answered
 *     for a write sees it), so a cache still catching up with Kafka is waited for, not answered
 *     from, and
 *   - the read has reached what the cache can serve right now, so that a record superseded during
 *     the read (conflation skips it) is always followed by the record that superseded it.
 * A stream's read is where its progress is; records that filters or conflation leave out move it
 * too. A lookup reads the stores directly, as far as they are visible, so for it the last point
 * holds by itself and the test is that the cache has reached those ends.
 */
export class UpToNow {
  readonly #topic: CachedTopic;
  readonly #isolation: Isolation;
  readonly #targets = new Map<number, bigint>();

  constructor(topic: CachedTopic, isolation: Isolation) {
    this.#topic = topic;
    this.#isolation = isolation;
    this.#reached(undefined);
  }

  /** Whether a stream whose progress is `progress` has read the topic up to now. */
  caughtUp(progress: ReadonlyMap<number, bigint>): boolean {
    return this.#reached(progress);
  }

  /** Whether the cache holds the topic up to now, for a read of the stores as they are. */
  cacheCaughtUp(): boolean {
    return this.#reached(undefined);
  }

  /** Every partition is looked at, not just up to the first behind, so that each target is taken early. */
  #reached(progress: ReadonlyMap<number, bigint> | undefined): boolean {
    let all = true;
    for (const partition of this.#topic.partitions()) {
      if (!this.#topic.isReady(partition)) {
        all = false;
        continue;
      }
      const store = this.#topic.store(partition);
      let target = this.#targets.get(partition);
      if (target === undefined) {
        const broker = brokerEnd(store, this.#isolation);
        const produced = this.#topic.producedEnd(partition);
        target = broker > produced ? broker : produced;
        this.#targets.set(partition, target);
      }
      const visible = visibleEnd(store, this.#isolation);
      const at = progress === undefined ? visible : progress.get(partition);
      if (at === undefined || at < target || at < visible) all = false;
    }
    return all;
  }
}

/**
 * The partitions of the topic whose oldest records the cache's byte budget evicted while Kafka may
 * still hold them, each with the offset the cache holds it from: a read of the cache covers those
 * partitions only from there, so an answer built from it may miss records the topic holds.
 */
export function evictedHeads(topic: CachedTopic): ReadonlyMap<number, bigint> {
  const heads = new Map<number, bigint>();
  for (const partition of topic.partitions()) {
    const store = topic.store(partition);
    if (store.evicted) heads.set(partition, store.logStartOffset);
  }
  return heads;
}
