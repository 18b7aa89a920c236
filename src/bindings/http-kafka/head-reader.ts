import type { PartitionStore } from '../kafka/cache/index.ts';
import type { CacheMessage, CacheStream, Isolation } from '../kafka/cache_client/index.ts';
import type { CachedTopic } from '../kafka/cache_server/api.ts';

export type Step =
  | { readonly type: 'message'; readonly message: CacheMessage }
  /** The stream has read everything the topic held when reading began, and what came since. */
  | { readonly type: 'head' }
  | { readonly type: 'timeout' }
  /** The stream ended or the caller's signal aborted. */
  | { readonly type: 'end' };

// How often the reader looks at the stream's progress while no message comes: a stream whose
// remaining records are all filtered out advances without delivering, and says nothing about it.
const POLL_MS = 20;

function visibleEnd(store: PartitionStore, isolation: Isolation): bigint {
  if (isolation === 'read_uncommitted') return store.nextOffset;
  return store.lastStableOffset < store.nextOffset ? store.lastStableOffset : store.nextOffset;
}

/** Where the broker's log ended as the cache last heard, for what the stream may read. */
function brokerEnd(store: PartitionStore, isolation: Isolation): bigint {
  return isolation === 'read_uncommitted' ? store.highWatermark : store.lastStableOffset;
}

/**
 * Reads a cache stream up to "now". Caught up means, for every partition of the topic:
 *   - the partition is ready (fetched) in the cache, and
 *   - the stream's progress has reached the broker's end offset as the cache knew it when the
 *     partition was first looked at (high watermark, or last stable offset for read_committed), and
 *     the end of what was produced through the cache_server by then, so a cache still catching up
 *     with Kafka is waited for, not answered from, and
 *   - the progress has reached what the cache can serve right now, so that a record superseded
 *     during the read (conflation skips it) is always followed by the record that superseded it.
 * The stream's progress is compared, not the delivered messages, since records that filters
 * or conflation leave out move it too.
 */
export class HeadReader {
  readonly #stream: CacheStream;
  readonly #topic: CachedTopic;
  readonly #targets = new Map<number, bigint>();
  #pending: Promise<IteratorResult<CacheMessage, undefined>> | undefined;

  constructor(stream: CacheStream, topic: CachedTopic) {
    this.#stream = stream;
    this.#topic = topic;
    this.caughtUp();
  }

  /** What the stream has consumed; final once finish() has resolved. */
  get progress(): ReadonlyMap<number, bigint> {
    return this.#stream.progress;
  }

  caughtUp(): boolean {
    const progress = this.#stream.progress;
    const isolation = this.#stream.isolation;
    let all = true;
    for (const partition of this.#topic.partitions()) {
      if (!this.#topic.isReady(partition)) {
        all = false;
        continue;
      }
      const store = this.#topic.store(partition);
      let target = this.#targets.get(partition);
      if (target === undefined) {
        const broker = brokerEnd(store, isolation);
        const produced = this.#topic.producedEnd(partition);
        target = broker > produced ? broker : produced;
        this.#targets.set(partition, target);
      }
      const at = progress.get(partition);
      if (at === undefined || at < target || at < visibleEnd(store, isolation)) all = false;
    }
    return all;
  }

  /**
   * The next message; `head` once caught up (when `stopAtHead`), `timeout` at `until` (epoch ms).
   * After `head` or `timeout` call finish(): a message the stream had already taken may be waiting.
   */
  async step(until: number, stopAtHead: boolean, signal?: AbortSignal): Promise<Step> {
    for (;;) {
      if (signal?.aborted === true) return { type: 'end' };
      if (stopAtHead && this.caughtUp()) return { type: 'head' };
      const left = until - Date.now();
      if (left <= 0) return { type: 'timeout' };
      this.#pending ??= this.#stream.next();
      let timer: NodeJS.Timeout | undefined;
      let onAbort: (() => void) | undefined;
      const tick = new Promise<'tick'>((resolve) => {
        timer = setTimeout(() => resolve('tick'), stopAtHead ? Math.min(POLL_MS, left) : left);
        onAbort = () => resolve('tick');
        signal?.addEventListener('abort', onAbort, { once: true });
      });
      const got = await Promise.race([this.#pending, tick]);
      clearTimeout(timer);
      if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
      if (got === 'tick') continue;
      this.#pending = undefined;
      if (got.done === true) return { type: 'end' };
      return { type: 'message', message: got.value };
    }
  }

  /**
   * Closes the stream. Resolves with the message an outstanding next() had already taken (its
   * progress counts it), so that nothing the progress claims goes unseen.
   */
  async finish(): Promise<CacheMessage | undefined> {
    this.#stream.close();
    const pending = this.#pending;
    this.#pending = undefined;
    if (pending === undefined) return undefined;
    try {
      const got = await pending;
      return got.done === true ? undefined : got.value;
    } catch {
      return undefined;
    }
  }
}
