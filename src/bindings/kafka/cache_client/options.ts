import { topicOptions, type KafkaTopicJson, type TopicOptions } from '../topic-options.ts';
import { DEFAULT_STAGING_MAX_BYTES, DEFAULT_STAGING_STALL_MS } from './staging.ts';

/** A cache_client's options as the schema admits them. */
export interface CacheClientOptionsJson {
  readonly topics?: readonly KafkaTopicJson[];
  readonly staging?: {
    readonly maxBytes?: number;
    readonly maxBytesPerConnection?: number;
    readonly stallMs?: number;
  };
}

export interface CacheClientOptions {
  readonly topics: readonly TopicOptions[];
  /** Bytes all producers of the binding may stage at once. */
  readonly stagingMaxBytes: number;
  /** Bytes the bodies of one client connection may stage at once, beside its oldest one. */
  readonly stagingMaxBytesPerConnection: number;
  /** How long a body may send nothing while others wait for the budget. */
  readonly stagingStallMs: number;
}

/** The share of one connection when none is set: an eighth of the budget. */
export const DEFAULT_CONNECTION_SHARE = 1 / 8;

/** A cache_client's options that passed its schema, with defaults applied. */
export function cacheClientOptions(options: unknown): CacheClientOptions {
  const json = options as CacheClientOptionsJson;
  const maxBytes = json.staging?.maxBytes ?? DEFAULT_STAGING_MAX_BYTES;
  return {
    topics: topicOptions(json.topics),
    stagingMaxBytes: maxBytes,
    stagingMaxBytesPerConnection:
      json.staging?.maxBytesPerConnection ?? Math.floor(maxBytes * DEFAULT_CONNECTION_SHARE),
    stagingStallMs: json.staging?.stallMs ?? DEFAULT_STAGING_STALL_MS,
  };
}
