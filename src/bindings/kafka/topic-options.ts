import { compileGlob } from '../../config/index.ts';
import type { ModelJson } from '../../models/config.ts';
import type { DefaultOffset } from './cache_server/api.ts';

/** One entry of a cache_server's or cache_client's `topics` as the schema admits it (`kafkaTopic`). */
export interface KafkaTopicJson {
  readonly name: string;
  readonly defaultOffset?: DefaultOffset;
  /** Accepted for Zilla files; kgate serves whole values, unmodelled and untransformed. */
  readonly deltaType?: 'none' | 'json_patch';
  readonly key?: ModelJson;
  readonly value?: ModelJson;
  readonly transforms?: readonly unknown[];
}

/** What kgate acts on of a per-topic entry. */
export interface TopicOptions {
  /** A glob, as in routes. */
  readonly name: string;
  readonly defaultOffset?: DefaultOffset;
  readonly key?: ModelJson;
  readonly value?: ModelJson;
}

export function topicOptions(topics: readonly KafkaTopicJson[] | undefined): TopicOptions[] {
  return (topics ?? []).map(({ name, defaultOffset, key, value }) => ({
    name,
    ...(defaultOffset === undefined ? {} : { defaultOffset }),
    ...(key === undefined ? {} : { key }),
    ...(value === undefined ? {} : { value }),
  }));
}

/**
 * The configured default offset of a topic: that of the first entry whose name matches it, even if
 * that entry gives none.
 */
export function defaultOffsets(
  topics: readonly TopicOptions[],
): (topic: string) => DefaultOffset | undefined {
  const compiled = topics.map((entry) => ({
    name: compileGlob(entry.name),
    defaultOffset: entry.defaultOffset,
  }));
  return (topic) => compiled.find((entry) => entry.name.test(topic))?.defaultOffset;
}
