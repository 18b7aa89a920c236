import { topicOptions, type KafkaTopicJson, type TopicOptions } from '../topic-options.ts';
import { DEFAULT_STAGING_MAX_BYTES } from './staging.ts';

/** A cache_client's options as the schema admits them. */
export interface CacheClientOptionsJson {
  readonly topics?: readonly KafkaTopicJson[];
  readonly staging?: { readonly maxBytes?: number };
}

export interface CacheClientOptions {
  readonly topics: readonly TopicOptions[];
  /** Bytes all producers of the binding may stage at once. */
  readonly stagingMaxBytes: number;
}

/** A cache_client's options that passed its schema, with defaults applied. */
export function cacheClientOptions(options: unknown): CacheClientOptions {
  const json = options as CacheClientOptionsJson;
  return {
    topics: topicOptions(json.topics),
    stagingMaxBytes: json.staging?.maxBytes ?? DEFAULT_STAGING_MAX_BYTES,
  };
}
