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
  readonly transforms?: readonly TransformJson[];
}

/** One entry of a topic's `transforms` as the schema admits it. */
export interface TransformJson {
  readonly 'extract-key'?: string;
  readonly 'extract-headers'?: { readonly [header: string]: string };
}

/** A field of a record's key or value, as `${message.value.<field>}` names it. */
export interface FieldPath {
  readonly part: 'key' | 'value';
  readonly field: string;
}

/** What a topic's `transforms` extract at ingest. */
export interface TopicTransforms {
  readonly extractKey?: FieldPath;
  readonly extractHeaders: readonly (readonly [string, FieldPath])[];
}

/** The pattern of a transform's field path; the schema checks it, so a match is certain. */
export const FIELD_PATH = /^\$\{message\.(key|value)\.([A-Za-z_][A-Za-z0-9_]*)\}$/;

function fieldPath(text: string): FieldPath {
  const match = FIELD_PATH.exec(text);
  return { part: match?.[1] === 'key' ? 'key' : 'value', field: match?.[2] ?? '' };
}

function topicTransforms(json: readonly TransformJson[]): TopicTransforms {
  let extractKey: FieldPath | undefined;
  const extractHeaders: [string, FieldPath][] = [];
  for (const entry of json) {
    const key = entry['extract-key'];
    if (key !== undefined) extractKey = fieldPath(key);
    for (const [name, path] of Object.entries(entry['extract-headers'] ?? {}))
      extractHeaders.push([name, fieldPath(path)]);
  }
  return { ...(extractKey === undefined ? {} : { extractKey }), extractHeaders };
}

/** What kgate acts on of a per-topic entry. */
export interface TopicOptions {
  /** A glob, as in routes. */
  readonly name: string;
  readonly defaultOffset?: DefaultOffset;
  readonly key?: ModelJson;
  readonly value?: ModelJson;
  readonly transforms?: TopicTransforms;
}

export function topicOptions(topics: readonly KafkaTopicJson[] | undefined): TopicOptions[] {
  return (topics ?? []).map(({ name, defaultOffset, key, value, transforms }) => ({
    name,
    ...(transforms === undefined ? {} : { transforms: topicTransforms(transforms) }),
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
