import { topicOptions, type KafkaTopicJson, type TopicOptions } from '../topic-options.ts';

/** A cache_server's options as the schema admits them. */
export interface CacheServerOptionsJson {
  readonly bootstrap?: readonly string[];
  readonly topics?: readonly KafkaTopicJson[];
}

export interface CacheServerOptions {
  /** Followed from start, never evicted. */
  readonly bootstrap: readonly string[];
  readonly topics: readonly TopicOptions[];
}

/** A cache_server's options that passed its schema, with absent lists empty. */
export function cacheServerOptions(options: unknown): CacheServerOptions {
  const json = options as CacheServerOptionsJson;
  return { bootstrap: json.bootstrap ?? [], topics: topicOptions(json.topics) };
}
