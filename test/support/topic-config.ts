import type { CachedTopicConfig } from '../../src/bindings/kafka/cache_server/api.ts';

/**
 * A topic config for fake topics in unit tests: no retention, one large segment, no compaction
 * lag, 1 KiB messages unless `overrides` says otherwise.
 */
export function topicConfig(overrides: Partial<CachedTopicConfig> = {}): CachedTopicConfig {
  return {
    cleanupPolicy: ['delete'],
    retentionMs: -1,
    retentionBytes: -1,
    segmentBytes: 1 << 30,
    segmentMs: 7 * 24 * 3600 * 1000,
    deleteRetentionMs: 24 * 3600 * 1000,
    minCompactionLagMs: 0,
    maxCompactionLagMs: Number.MAX_SAFE_INTEGER,
    maxMessageBytes: 1024,
    ...overrides,
  };
}
