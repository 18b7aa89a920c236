import type { CachedTopic, CachedTopicConfig } from '../cache_server/api.ts';

/**
 * What a stream opened to produce only holds instead of an attachment. Producing needs the
 * topic's config (max.message.bytes bounds a staged message) but none of its cached records, and
 * an attachment would make the cache_server follow the topic: fetch it, store it, and put its
 * fetches on the broker connection the produce requests travel on, for records nobody reads.
 */
export function produceOnlyTopic(topic: string, config: CachedTopicConfig): CachedTopic {
  return {
    topic,
    config,
    compacted: config.cleanupPolicy.includes('compact'),
    // Where reading would start; a produce-only stream never reads.
    defaultOffset: 'live',
    partitions: () => [],
    isReady: () => false,
    producedEnd: () => -1n,
    store: () => {
      throw new Error(`stream on topic ${topic} was opened to produce only`);
    },
    onChange: () => () => undefined,
    release: () => undefined,
  };
}
