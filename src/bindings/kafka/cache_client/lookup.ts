// Point lookups by key on a cached topic: the store's key index names the newest offset of a key
// per partition, so one index probe per partition replaces a stream that would read every record
// of the topic to find the few carrying that key. What a lookup answers is what a read_committed
// stream over the same topic would deliver for that key, and its progress is the progress such a
// stream would report, so the two can hand positions to each other.

import { KgateError } from '../../../engine/errors.ts';
import type { CachedRecord } from '../cache/index.ts';
import type { CachedTopic, TopicChange } from '../cache_server/api.ts';
import { partitionForKey } from '../cache_server/murmur2.ts';
import { compileFilters, type Filter, type FilterSet } from './filters.ts';
import { knownPartitions, partitionEnd } from './positions.ts';
import { viewRecord, type RecordViews } from './models.ts';
import type { CacheMessage, Isolation } from './stream.ts';
import { UpToNow, visibleEnd } from './up-to-now.ts';

/** Longest a lookup waits for the cache to catch up with the topic unless told otherwise. */
export const DEFAULT_CATCH_UP_MS = 30_000;

/** A lookup answers what a read_committed stream would deliver, and reads "up to now" as one. */
const ISOLATION: Isolation = 'read_committed';

export interface KeyLookupOptions {
  /**
   * Conditions the key's record must also meet (ANDed, e.g. header conditions); a record that
   * does not meet them is answered as no record. The key itself is not repeated here.
   */
  readonly conditions?: Filter;
  /**
   * Progress of an earlier answer or stream (partition -> next offset). `changed` then tells
   * whether a stream resumed from it would deliver a record of the key that meets the conditions.
   */
  readonly since?: ReadonlyMap<number, bigint>;
  /** With `since` and no change yet: how long (ms) to wait for one. Default 0. */
  readonly waitMs?: number;
  /** Ends such a wait early, answering as if it had run out. */
  readonly waitSignal?: AbortSignal;
  /** How long to wait for the cache to catch up with the topic before NotCaughtUpError. */
  readonly catchUpMs?: number;
  /** Abandons the lookup: it rejects with the signal's reason. */
  readonly signal?: AbortSignal;
  /**
   * The topic's models: the record is answered as JSON readers see it, and one that does not
   * decode is answered as no record. Rejects with SchemaUnavailableError when its schema cannot
   * be had.
   */
  readonly views?: RecordViews;
}

export interface KeyLookup {
  /**
   * The key's current record: of the newest record with the key in each partition, the latest by
   * timestamp (on a tie, the partition Kafka's default partitioner picks for the key, then the
   * highest). Null when the key has no record, its latest is a tombstone, or it does not meet
   * the conditions. Its buffers belong to the caller.
   */
  readonly message: CacheMessage | null;
  /** Next offset per partition that the answer covers: where a stream reading up to now would be. */
  readonly progress: ReadonlyMap<number, bigint>;
  /** True without `since`; with it, whether a record of the key meeting the conditions came since. */
  readonly changed: boolean;
}

/** The cache had not fetched up to the topic's end as known when the lookup began. */
export class NotCaughtUpError extends KgateError {
  readonly topic: string;

  constructor(topic: string, waitedMs: number) {
    super(
      'KGATE_NOT_CAUGHT_UP',
      `the cache did not catch up with topic ${topic} within ${waitedMs / 1000} s`,
    );
    this.topic = topic;
  }
}

/**
 * Looks the key up in every partition's key index and answers as of now, once the cache has
 * caught up with the topic; with `since` and `waitMs`, holds the answer until a change arrives or
 * the wait runs out. Answers with a compacted topic's semantics: on a topic that is not compacted,
 * older records of the key are not considered.
 */
export async function lookupKey(
  topic: CachedTopic,
  key: Buffer,
  options: KeyLookupOptions = {},
): Promise<KeyLookup> {
  const found = await lookupStored(topic, key, options);
  const views = options.views;
  const message = found.message;
  if (views === undefined || message === null) return found;
  for (;;) {
    const viewed = viewRecord(views, message.partition, message);
    if ('pending' in viewed) {
      await viewed.pending;
      continue;
    }
    if ('skip' in viewed) return { ...found, message: null };
    return { ...found, message: { ...message, key: viewed.key, value: viewed.value } };
  }
}

async function lookupStored(topic: CachedTopic, key: Buffer, options: KeyLookupOptions): Promise<KeyLookup> {
  const signal = options.signal;
  signal?.throwIfAborted();
  const conditions = compileFilters(options.conditions === undefined ? undefined : [options.conditions]);
  const upToNow = new UpToNow(topic, ISOLATION);
  let watch: TopicWatch | undefined;
  try {
    if (!upToNow.cacheCaughtUp()) {
      // Subscribed in the same turn as the check above, so no change can fall between the two.
      watch = new TopicWatch(topic);
      const catchUpMs = options.catchUpMs ?? DEFAULT_CATCH_UP_MS;
      const by = Date.now() + catchUpMs;
      while (!upToNow.cacheCaughtUp()) {
        watch.check(signal);
        if (Date.now() >= by) throw new NotCaughtUpError(topic.topic, catchUpMs);
        await watch.next(by, signal);
      }
    }
    const since = options.since;
    let found = probe(topic, key, conditions, since);
    const waitMs = options.waitMs ?? 0;
    if (since === undefined || found.changed || waitMs <= 0 || options.waitSignal?.aborted === true)
      return found;
    watch ??= new TopicWatch(topic);
    const until = Date.now() + waitMs;
    const waitSignal = options.waitSignal;
    const stops = [signal, waitSignal].filter((s): s is AbortSignal => s !== undefined);
    const stop = stops.length > 1 ? AbortSignal.any(stops) : stops[0];
    for (;;) {
      await watch.next(until, stop);
      watch.check(signal);
      // Only what came after the answer so far is new: resume from its progress.
      found = probe(topic, key, conditions, found.progress);
      if (found.changed || Date.now() >= until || waitSignal?.aborted === true) return found;
    }
  } finally {
    watch?.close();
  }
}

/** The key's state now. Synchronous, so every partition is read at the same committed state. */
function probe(
  topic: CachedTopic,
  key: Buffer,
  conditions: FilterSet,
  since: ReadonlyMap<number, bigint> | undefined,
): KeyLookup {
  // Held to the topic as a stream holds a resume: no made-up partition is echoed, and an offset
  // past a partition's end is taken as that end, so a change after it is seen.
  const progress = since === undefined ? new Map<number, bigint>() : knownPartitions(topic, since);
  const partitions = topic.partitions();
  const preferred = partitions.length > 0 ? partitionForKey(key, partitions.length) : -1;
  let changed = since === undefined;
  let best: { partition: number; record: CachedRecord } | undefined;
  for (const partition of partitions) {
    // Not readable yet: a stream would not have started it, so its progress says nothing.
    if (!topic.isReady(partition)) continue;
    const store = topic.store(partition);
    const logStart = store.logStartOffset;
    const given = progress.get(partition);
    const end = partitionEnd(topic, partition, store);
    const from = given === undefined || given < logStart ? logStart : given > end ? end : given;
    const visible = visibleEnd(store, ISOLATION);
    progress.set(partition, visible > from ? visible : from);
    const offset = store.latestOffsetOf(key);
    // Past the visible end the newest record is in an undecided transaction: a stream would not
    // read it yet, and would skip the older ones it supersedes.
    if (offset === null || offset >= visible) continue;
    const record = store.recordAt(offset);
    if (record === undefined) continue;
    if (!changed && offset >= from && conditions.matches(record)) changed = true;
    if (best === undefined || newer(record, partition, best, preferred)) best = { partition, record };
  }
  const message =
    best === undefined || best.record.value === null || !conditions.matches(best.record)
      ? null
      : toMessage(best.partition, best.record, conditions.count > 0 ? 1 : 0, progress);
  return { message, progress, changed };
}

function newer(
  record: CachedRecord,
  partition: number,
  than: { partition: number; record: CachedRecord },
  preferred: number,
): boolean {
  if (record.timestamp !== than.record.timestamp) return record.timestamp > than.record.timestamp;
  if (partition === preferred || than.partition === preferred) return partition === preferred;
  return partition > than.partition;
}

function toMessage(
  partition: number,
  record: CachedRecord,
  filters: number,
  progress: ReadonlyMap<number, bigint>,
): CacheMessage {
  return {
    partition,
    offset: record.offset,
    timestamp: record.timestamp,
    key: record.key,
    value: record.value,
    headers: record.headers,
    filters,
    progress,
  };
}

/** Wakes a waiting lookup on any change of the topic; remembers a terminal error. */
class TopicWatch {
  readonly #unsubscribe: () => void;
  #changed = false;
  #wake: (() => void) | undefined;
  #error: Error | undefined;

  constructor(topic: CachedTopic) {
    this.#unsubscribe = topic.onChange((change: TopicChange) => {
      if (change.type === 'error') this.#error ??= change.error;
      this.#changed = true;
      const wake = this.#wake;
      this.#wake = undefined;
      wake?.();
    });
  }

  /** Throws when the lookup was abandoned or the topic can no longer be served. */
  check(signal: AbortSignal | undefined): void {
    signal?.throwIfAborted();
    if (this.#error !== undefined) throw this.#error;
  }

  /** Resolves at the first change since the previous call, at `until` (epoch ms), or on abort. */
  async next(until: number, signal: AbortSignal | undefined): Promise<void> {
    if (!this.#changed && signal?.aborted !== true) {
      let timer: NodeJS.Timeout | undefined;
      let onAbort: (() => void) | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        timer = setTimeout(resolve, Math.max(0, until - Date.now()));
        onAbort = resolve;
        signal?.addEventListener('abort', onAbort, { once: true });
      });
      clearTimeout(timer);
      this.#wake = undefined;
      if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
    }
    this.#changed = false;
  }

  close(): void {
    this.#unsubscribe();
    this.#wake?.();
  }
}
