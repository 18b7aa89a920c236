import type { Logger } from 'pino';
import type { CacheStore } from '../cache/index.ts';
import { sleep } from '../client/index.ts';
import type { KafkaApi } from '../client/index.ts';
import type { CachedTopicConfig } from './api.ts';
import { evictToBudget } from './budget.ts';
import type { CacheServerMetrics } from './metrics.ts';
import { CONFIG_TIMEOUT_MS } from './topic-config.ts';
import type { TopicFollower } from './topic.ts';
import type { CacheServerTuning } from './tuning.ts';

export interface MaintenanceHost {
  readonly store: CacheStore;
  readonly metrics: CacheServerMetrics;
  readonly log: Logger;
  readonly tuning: CacheServerTuning;
  /** The store's byte budget; undefined when it has none. */
  readonly maxBytes: number | undefined;
  /** Never evicted, and named when they alone exceed the budget. */
  readonly bootstrap: readonly string[];
  /** The topic's follower while it is followed, to tell its readers of truncations. */
  follower(topic: string): TopicFollower | undefined;
  /** The topic's last attach or release (epoch ms); 0 when never seen. */
  lastUsed(topic: string): number;
  /** The topic's config as last loaded, however old; undefined if never loaded. */
  cachedConfig(topic: string): { readonly value: CachedTopicConfig; readonly at: number } | undefined;
  /** The topic's config, asked for again once older than configRefreshMs. */
  config(topic: string, signal: AbortSignal): Promise<CachedTopicConfig>;
  client(topic: string): KafkaApi;
}

/**
 * Expiry, compaction and the byte budget over every partition in the store, in rounds on a timer
 * of their own. Rounds go by what is cached, not by what is followed or attached: a topic nobody
 * reads any more still expires, and its records still count against the budget.
 */
export class CacheMaintenance {
  readonly #host: MaintenanceHost;
  /** Bootstrap topics alone are past the budget: warned once until it is met again. */
  #overBudget = false;

  constructor(host: MaintenanceHost) {
    this.#host = host;
  }

  /** A round every maintenanceIntervalMs until the signal aborts; a failed round is logged. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await sleep(this.#host.tuning.maintenanceIntervalMs, signal);
      if (signal.aborted) break;
      try {
        await this.once(signal);
      } catch (error) {
        if (signal.aborted) break;
        this.#host.log.warn({ err: error }, 'cache maintenance failed');
      }
    }
  }

  /**
   * Expires and compacts every cached partition per its topic's config, then evicts down to the
   * byte budget if there is one.
   */
  async once(signal: AbortSignal): Promise<void> {
    const store = this.#host.store;
    const byTopic = new Map<string, number[]>();
    for (const { topic, partition } of store.partitions())
      byTopic.set(topic, [...(byTopic.get(topic) ?? []), partition]);
    for (const [topic, partitions] of byTopic) {
      if (signal.aborted) return;
      const config = await this.#config(topic, signal);
      if (config === undefined) continue;
      for (const partition of partitions) {
        if (signal.aborted) return;
        await this.#maintainPartition(topic, partition, config);
      }
    }
    // After expiry and compaction, which may already have brought the cache within budget.
    if (!signal.aborted) await this.#enforceBudget(signal);
  }

  async #enforceBudget(signal: AbortSignal): Promise<void> {
    const { store, metrics, log, maxBytes, bootstrap } = this.#host;
    if (maxBytes === undefined) return;
    const round = await evictToBudget(
      {
        store,
        isBootstrap: (topic) => bootstrap.includes(topic),
        // A topic attached now is in use now, however long ago it was attached.
        lastUsed: (topic) =>
          (this.#host.follower(topic)?.attachments ?? 0) > 0 ? Date.now() : this.#host.lastUsed(topic),
        truncated: (topic, partition, logStartOffset) =>
          this.#host.follower(topic)?.emit({ type: 'truncated', partition, logStartOffset }),
        evicted: (topic, partition, records, bytes) => metrics.evicted(topic, partition, records, bytes),
      },
      maxBytes,
      signal,
    );
    if (round === undefined) {
      this.#overBudget = false;
      return;
    }
    if (round.evictedBytes > 0)
      log.info(
        {
          evictedBytes: round.evictedBytes,
          evictedRecords: round.evictedRecords,
          topics: round.topics,
          bytesBefore: round.bytesBefore,
          bytesAfter: round.bytesAfter,
          maxBytes,
        },
        'cache over its byte budget; evicted the oldest records of least recently used topics',
      );
    if (round.bootstrapBytes > maxBytes) {
      if (!this.#overBudget) {
        this.#overBudget = true;
        metrics.budgetExceeded();
        log.warn(
          {
            bootstrapBytes: round.bootstrapBytes,
            bytes: round.bytesAfter,
            maxBytes,
            bootstrap,
          },
          'bootstrap topics alone exceed the cache budget; they are never evicted, so the cache stays over it',
        );
      }
    } else this.#overBudget = false;
  }

  /** The config of a cached topic; for one no longer followed, only if it still exists. */
  async #config(topic: string, signal: AbortSignal): Promise<CachedTopicConfig | undefined> {
    const cached = this.#host.cachedConfig(topic);
    if (
      cached !== undefined &&
      (this.#host.follower(topic) !== undefined || Date.now() - cached.at < this.#host.tuning.configRefreshMs)
    )
      return cached.value;
    try {
      // A topic deleted since it was cached has no config to ask for; DescribeConfigs would only
      // retry UNKNOWN_TOPIC_OR_PARTITION until the timeout.
      const metadata = await this.#host.client(topic).metadata([topic], {
        signal: AbortSignal.any([signal, AbortSignal.timeout(CONFIG_TIMEOUT_MS)]),
      });
      const found = metadata.topics.find((t) => t.name === topic);
      if (found === undefined || found.error !== null) return cached?.value;
      return await this.#host.config(topic, signal);
    } catch (error) {
      this.#host.log.debug({ topic, err: error }, 'no config for maintenance');
      return cached?.value;
    }
  }

  async #maintainPartition(topic: string, partition: number, config: CachedTopicConfig): Promise<void> {
    const { store, metrics } = this.#host;
    const p = store.partition(topic, partition);
    const before = p.logStartOffset;
    const now = Date.now();
    if (config.cleanupPolicy.includes('delete')) {
      const r = await p.expire({
        retentionMs: config.retentionMs,
        retentionBytes: config.retentionBytes,
        segmentBytes: config.segmentBytes,
        segmentMs: config.segmentMs,
        now,
      });
      metrics.expired(topic, partition, r.removedRecords, r.removedBytes);
    }
    if (config.cleanupPolicy.includes('compact')) {
      const r = await p.compact({
        minCompactionLagMs: config.minCompactionLagMs,
        maxCompactionLagMs: config.maxCompactionLagMs,
        deleteRetentionMs: config.deleteRetentionMs,
        now,
      });
      metrics.compacted(topic, partition, r.removedRecords, r.removedBytes);
    }
    if (p.logStartOffset !== before)
      this.#host.follower(topic)?.emit({ type: 'truncated', partition, logStartOffset: p.logStartOffset });
  }
}
