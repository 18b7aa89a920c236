import type { CacheStore, PartitionStore } from '../cache/index.ts';

/**
 * Eviction stops at this share of the budget rather than at the budget itself, so that a cache
 * filling steadily is not trimmed by a sliver on every maintenance round.
 */
export const LOW_WATER = 0.9;

export interface EvictionHost {
  readonly store: CacheStore;
  isBootstrap(topic: string): boolean;
  /** When the topic was last attached, released or read (epoch ms); 0 when never seen. */
  lastUsed(topic: string): number;
  /** The partition's log start moved: readers attached to it must skip ahead. */
  truncated(topic: string, partition: number, logStartOffset: bigint): void;
  evicted(topic: string, partition: number, records: number, bytes: number): void;
}

export interface EvictionRound {
  /** Encoded record bytes in the store before and after the round. */
  readonly bytesBefore: number;
  readonly bytesAfter: number;
  readonly bootstrapBytes: number;
  readonly evictedBytes: number;
  readonly evictedRecords: number;
  /** Topics evicted from, least recently used first. */
  readonly topics: readonly string[];
}

interface TopicUsage {
  readonly partitions: PartitionStore[];
  bytes: number;
}

/**
 * When the store holds more than maxBytes of encoded records, drops the oldest records of the
 * least recently used topics that are not bootstrapped until it holds at most LOW_WATER of it:
 * each topic is emptied from its partitions' heads (in proportion to their sizes, so the
 * partitions keep similar time windows) before the next one is touched. Bootstrap topics are
 * never evicted: they are what the gateway promises to serve whole. Returns undefined when the
 * store is within budget.
 *
 * Each step is the store's evictBefore, which moves a log start in one transaction (marking the
 * partition evicted: the broker may still hold what it drops) and then deletes in chunks, so a
 * crash or a stop mid-round leaves a consistent cache.
 */
export async function evictToBudget(
  host: EvictionHost,
  maxBytes: number,
  signal: AbortSignal,
): Promise<EvictionRound | undefined> {
  const { store } = host;
  const byTopic = new Map<string, TopicUsage>();
  let total = 0;
  for (const { topic, partition } of store.partitions()) {
    const p = store.partition(topic, partition);
    const bytes = p.stats().bytes;
    total += bytes;
    const usage = byTopic.get(topic);
    if (usage === undefined) byTopic.set(topic, { partitions: [p], bytes });
    else {
      usage.partitions.push(p);
      usage.bytes += bytes;
    }
  }
  if (total <= maxBytes) return undefined;
  let bootstrapBytes = 0;
  for (const [topic, usage] of byTopic) if (host.isBootstrap(topic)) bootstrapBytes += usage.bytes;
  const target = Math.floor(maxBytes * LOW_WATER);
  const candidates = [...byTopic.keys()]
    .filter((t) => !host.isBootstrap(t))
    .map((topic) => ({ topic, lastUsed: host.lastUsed(topic) }))
    .sort((a, b) => a.lastUsed - b.lastUsed || (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0));
  const bytesBefore = total;
  let evictedBytes = 0;
  let evictedRecords = 0;
  const topics: string[] = [];
  for (const { topic } of candidates) {
    if (total <= target || signal.aborted) break;
    const usage = byTopic.get(topic);
    if (usage === undefined) continue;
    let fromTopic = 0;
    while (total > target && !signal.aborted) {
      const heads = usage.partitions.filter((p) => p.stats().bytes > 0);
      const topicBytes = heads.reduce((sum, p) => sum + p.stats().bytes, 0);
      if (heads.length === 0 || topicBytes === 0) break;
      let progress = false;
      const excess = total - target;
      for (const p of heads) {
        if (signal.aborted) break;
        const share = Math.max(1, Math.ceil((excess * p.stats().bytes) / topicBytes));
        const end = p.headEnd(share);
        const logStart = p.logStartOffset;
        if (end <= logStart) continue;
        // Counted chunk by chunk as the deletes commit, not once the call returns: the store
        // shows each chunk gone at once, and a scrape or a caller looking in between must find
        // the counter agreeing with it.
        const r = await p.evictBefore(end, (records, bytes) => {
          host.evicted(topic, p.partition, records, bytes);
        });
        if (r.logStartOffset > logStart) host.truncated(topic, p.partition, r.logStartOffset);
        if (r.removedRecords === 0 && r.removedBytes === 0) continue;
        progress = true;
        total -= r.removedBytes;
        fromTopic += r.removedBytes;
        evictedBytes += r.removedBytes;
        evictedRecords += r.removedRecords;
      }
      // Only records below a log start left by a crash: expiry purges them, not this.
      if (!progress) break;
    }
    if (fromTopic > 0) topics.push(topic);
  }
  let bytesAfter = 0;
  for (const usage of byTopic.values()) for (const p of usage.partitions) bytesAfter += p.stats().bytes;
  return { bytesBefore, bytesAfter, bootstrapBytes, evictedBytes, evictedRecords, topics };
}
