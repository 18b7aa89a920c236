import type { CachedTopicConfig } from './api.ts';

/**
 * How long asking the broker about a topic's config may take (its Metadata check included) before
 * the caller falls back on what it had.
 */
export const CONFIG_TIMEOUT_MS = 30_000;

function int(configs: Record<string, string>, name: string, fallback: number): number {
  const raw = configs[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  return Number.isFinite(value) ? value : fallback;
}

/** The topic config as DescribeConfigs reports it, with the broker defaults for anything missing. */
export function parseTopicConfig(configs: Record<string, string>): CachedTopicConfig {
  const policies = (configs['cleanup.policy'] ?? 'delete')
    .split(',')
    .map((p) => p.trim())
    .filter((p): p is 'compact' | 'delete' => p === 'compact' || p === 'delete');
  return {
    cleanupPolicy: policies.length === 0 ? ['delete'] : policies,
    retentionMs: int(configs, 'retention.ms', 7 * 24 * 3600 * 1000),
    retentionBytes: int(configs, 'retention.bytes', -1),
    segmentBytes: int(configs, 'segment.bytes', 1024 * 1024 * 1024),
    segmentMs: int(configs, 'segment.ms', 7 * 24 * 3600 * 1000),
    deleteRetentionMs: int(configs, 'delete.retention.ms', 24 * 3600 * 1000),
    minCompactionLagMs: int(configs, 'min.compaction.lag.ms', 0),
    maxCompactionLagMs: int(configs, 'max.compaction.lag.ms', Number.MAX_SAFE_INTEGER),
    maxMessageBytes: int(configs, 'max.message.bytes', 1024 * 1024 + 12),
  };
}
