import type { CacheServerTuning } from './tuning.ts';
import { topicOptions, type KafkaTopicJson, type TopicOptions } from '../topic-options.ts';

/** A cache_server's options as the schema admits them. */
export interface CacheServerOptionsJson {
  readonly bootstrap?: readonly string[];
  readonly topics?: readonly KafkaTopicJson[];
  readonly metadata?: {
    readonly refreshMs?: number;
    readonly maxAgeMs?: number;
    readonly waitMs?: number;
  };
  readonly limits?: {
    readonly 'requested-topics'?: number;
  };
}

export interface CacheServerOptions {
  /** Followed from start, never evicted. */
  readonly bootstrap: readonly string[];
  readonly topics: readonly TopicOptions[];
  /** The metadata timings given in the config; the others keep their defaults. */
  readonly tuning: Partial<
    Pick<CacheServerTuning, 'metadataRefreshMs' | 'metadataMaxAgeMs' | 'metadataWaitMs' | 'requestedTopics'>
  >;
}

/** A cache_server's options that passed its schema, with absent lists empty. */
export function cacheServerOptions(options: unknown): CacheServerOptions {
  const json = options as CacheServerOptionsJson;
  const metadata = json.metadata ?? {};
  const requested = json.limits?.['requested-topics'];
  return {
    bootstrap: json.bootstrap ?? [],
    topics: topicOptions(json.topics),
    tuning: {
      ...(metadata.refreshMs === undefined ? {} : { metadataRefreshMs: metadata.refreshMs }),
      ...(metadata.maxAgeMs === undefined ? {} : { metadataMaxAgeMs: metadata.maxAgeMs }),
      ...(metadata.waitMs === undefined ? {} : { metadataWaitMs: metadata.waitMs }),
      ...(requested === undefined ? {} : { requestedTopics: requested }),
    },
  };
}
