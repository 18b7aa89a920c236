import { Counter, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import { compileGlob } from '../../../config/index.ts';
import { createCatalog, type Catalog } from '../../../models/catalog.ts';
import type { CatalogsJson, ModelJson } from '../../../models/config.ts';
import { TopicModel, type ViewResult } from '../../../models/topic-model.ts';
import type { TopicOptions } from '../topic-options.ts';
import type { ProduceMessage } from './produce.ts';

/**
 * The models of one topic as a stream or a key lookup applies them: produced values and keys are
 * encoded, and readers see the JSON view of those with `view: json`. A stored record that does not
 * decode is skipped; its model counts and logs it when it converts it, once for all readers.
 */
export interface RecordViews {
  readonly key?: TopicModel;
  readonly value?: TopicModel;
}

/** A record's key and value as readers see them, or why they do not. */
export type ViewedRecord =
  | { readonly key: Buffer | null; readonly value: Buffer | null }
  | { readonly skip: string }
  | { readonly pending: Promise<unknown> };

function viewPart(
  model: TopicModel | undefined,
  partition: number,
  offset: bigint,
  raw: Buffer | null,
): ViewResult {
  if (model === undefined || !model.view || raw === null) return { value: raw ?? Buffer.alloc(0) };
  return model.viewOf(partition, offset, raw);
}

/** The record as a JSON reader sees it: keys and values of a model with `view: json` converted. */
export function viewRecord(
  views: RecordViews,
  partition: number,
  record: { readonly offset: bigint; readonly key: Buffer | null; readonly value: Buffer | null },
): ViewedRecord {
  const key =
    views.key?.view === true && record.key !== null
      ? viewPart(views.key, partition, record.offset, record.key)
      : undefined;
  if (key !== undefined && !('value' in key)) return 'skip' in key ? { skip: `key ${key.skip}` } : key;
  const value =
    views.value?.view === true && record.value !== null
      ? viewPart(views.value, partition, record.offset, record.value)
      : undefined;
  if (value !== undefined && !('value' in value)) return value;
  return {
    key: key === undefined ? record.key : key.value,
    value: value === undefined ? record.value : value.value,
  };
}

type Produced = Omit<ProduceMessage, 'partition' | 'acks' | 'maxBlockMs' | 'signal'>;

/**
 * A record as it goes to Kafka: its value and key encoded by their models (a tombstone stays
 * one). Rejects with InvalidContentError (400) or SchemaUnavailableError (503); nothing is sent.
 */
export async function encodeRecord<R extends Produced>(
  views: RecordViews,
  record: R,
  signal?: AbortSignal,
): Promise<R> {
  const asBuffer = (v: Buffer | string): Buffer => (typeof v === 'string' ? Buffer.from(v, 'utf8') : v);
  const value =
    views.value === undefined || record.value === null || record.value === undefined
      ? record.value
      : await views.value.encode(asBuffer(record.value), signal);
  const key =
    views.key === undefined || record.key === null || record.key === undefined
      ? record.key
      : await views.key.encode(asBuffer(record.key), signal);
  return { ...record, value, key };
}

/**
 * The catalogs and topic models of one cache_client: built from the config's catalogs and the
 * binding's `topics`, one TopicModel per topic and part, shared by every stream on the topic, so
 * a record read by many streams is converted once.
 */
export class CacheClientModels {
  readonly #binding: string;
  readonly #log: Logger;
  readonly #catalogs: ReadonlyMap<string, Catalog>;
  readonly #entries: readonly {
    readonly name: { test(topic: string): boolean };
    readonly topic: TopicOptions;
  }[];
  readonly #byTopic = new Map<string, RecordViews | undefined>();
  readonly #reasons = new Set<string>();
  readonly #skips: Counter;

  constructor(
    binding: string,
    topics: readonly TopicOptions[],
    catalogs: CatalogsJson,
    metrics: Registry,
    log: Logger,
    configFile?: string,
  ) {
    this.#binding = binding;
    this.#log = log;
    const built = new Map<string, Catalog>();
    for (const [name, json] of Object.entries(catalogs))
      built.set(name, createCatalog(name, json, configFile));
    this.#catalogs = built;
    this.#entries = topics
      .filter((topic) => topic.key !== undefined || topic.value !== undefined)
      .map((topic) => ({ name: compileGlob(topic.name), topic }));
    const name = 'kgate_cache_client_records_skipped_total';
    this.#skips =
      (metrics.getSingleMetric(name) as Counter | undefined) ??
      new Counter({
        name,
        help: 'Records not delivered to JSON readers because their key or value does not decode with its model, by reason',
        labelNames: ['binding', 'topic', 'reason'],
        registers: [metrics],
      });
  }

  /** Values converted (not served from a memo) so far, all topics together. */
  get conversions(): number {
    let total = 0;
    for (const views of this.#byTopic.values())
      total += (views?.value?.conversions ?? 0) + (views?.key?.conversions ?? 0);
    return total;
  }

  /** The models of `topic`: those of the first `topics` entry whose name matches it and has any. */
  viewsFor(topic: string): RecordViews | undefined {
    if (this.#byTopic.has(topic)) return this.#byTopic.get(topic);
    const entry = this.#entries.find((e) => e.name.test(topic))?.topic;
    let views: RecordViews | undefined;
    if (entry !== undefined) {
      const skipped = (reason: string): void => this.#skipped(topic, reason);
      const model = (json: ModelJson, part: 'key' | 'value'): TopicModel =>
        new TopicModel(json, this.#catalogs, topic, part, skipped);
      const key = entry.key === undefined ? undefined : model(entry.key, 'key');
      const value = entry.value === undefined ? undefined : model(entry.value, 'value');
      views = {
        ...(key === undefined ? {} : { key }),
        ...(value === undefined ? {} : { value }),
      };
    }
    this.#byTopic.set(topic, views);
    return views;
  }

  #skipped(topic: string, reason: string): void {
    this.#skips.inc({ binding: this.#binding, topic, reason });
    // Once per reason: a topic full of records of another schema must not flood the log.
    const said = `${topic}\n${reason}`;
    if (this.#reasons.has(said)) return;
    this.#reasons.add(said);
    this.#log.warn(
      { topic, reason },
      'records skipped for JSON readers: they do not decode with the topic model',
    );
  }
}
