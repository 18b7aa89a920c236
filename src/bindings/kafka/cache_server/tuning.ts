import { DEFAULT_REQUESTED_TOPICS } from './requested-topics.ts';
import type { CacheStoreOptions } from '../cache/index.ts';

/**
 * Timings of a cache_server. The config sets the metadata ones (`options.metadata`); for the
 * others the schema has no place, so a deployment gets the defaults. Tests and embedding
 * applications pass their own to the constructor, which win over the config.
 */
export interface CacheServerTuning {
  /** How long a topic that is not bootstrapped stays followed after its last attachment is released. */
  readonly lingerMs: number;
  /** How often topic metadata (partitions, topic id) is refreshed while a topic is followed. */
  readonly metadataRefreshMs: number;
  /**
   * A request for a topic (an attach, a produce) whose metadata was last asked for longer ago than
   * this asks again before it is served, so that a deleted or recreated topic is seen at once.
   */
  readonly metadataMaxAgeMs: number;
  /**
   * How long a request waits for that answer. Past it (a broker that does not answer) it is served
   * from what the cache knows, and later requests do not wait again until an answer comes.
   */
  readonly metadataWaitMs: number;
  /** How often a topic's config (retention, cleanup policy, ...) is asked for again. */
  readonly configRefreshMs: number;
  /** How often expiry and compaction run over every cached partition. */
  readonly maintenanceIntervalMs: number;
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
  /**
   * Keys and values one partition may hold back waiting for open transactions to end; past it the
   * partition is refetched read_committed (aborted records then leave holes instead of flags).
   */
  readonly maxHeldBytes: number;
  readonly durability: NonNullable<CacheStoreOptions['durability']>;
  /** Keys and values that appends of different partitions may share one commit with. */
  readonly maxCommitBytes: number;
  /**
   * Records one commit may carry. A commit runs on the event loop, a few microseconds per record,
   * so this bounds how long a backfill of small records holds up every request being served.
   */
  readonly maxCommitRecords: number;
  /** Topics requests may make the cache follow at once, bootstrap topics not counted (`limits.requested-topics`). */
  readonly requestedTopics: number;
}

export const DEFAULT_TUNING: CacheServerTuning = {
  lingerMs: 60_000,
  metadataRefreshMs: 5_000,
  metadataMaxAgeMs: 1_000,
  metadataWaitMs: 2_000,
  configRefreshMs: 60_000,
  maintenanceIntervalMs: 30_000,
  retryInitialMs: 200,
  retryMaxMs: 10_000,
  maxHeldBytes: 32 * 1024 * 1024,
  durability: 'sync',
  maxCommitBytes: 16 * 1024 * 1024,
  maxCommitRecords: 16 * 1024,
  requestedTopics: DEFAULT_REQUESTED_TOPICS,
};
