import type { Logger } from 'pino';
import { compileGlob } from '../../../config/index.ts';
import { createCatalog, type Catalog } from '../../../models/catalog.ts';
import type { CatalogsJson } from '../../../models/config.ts';
import { TopicModel } from '../../../models/topic-model.ts';
import type { RecordInput } from '../cache/index.ts';
import type { FieldPath, TopicOptions, TopicTransforms } from '../topic-options.ts';

/** What one topic's `transforms` do to each record it ingests. */
export interface RecordTransform {
  /** The records with the extracted key and headers; those whose fields are missing as they came. */
  apply(records: readonly RecordInput[]): Promise<RecordInput[]>;
}

function asText(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  return JSON.stringify(value);
}

function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Applies one topic's `extract-key` and `extract-headers` at ingest: the fields are read from the
 * key or value decoded by the topic's model (JSON text without one), once per record, and stored
 * in the cache as the record's key and extra headers, so filters on them cost what a key or header
 * filter costs.
 */
class TopicTransform implements RecordTransform {
  readonly #transforms: TopicTransforms;
  readonly #key: TopicModel | undefined;
  readonly #value: TopicModel | undefined;

  constructor(transforms: TopicTransforms, key: TopicModel | undefined, value: TopicModel | undefined) {
    this.#transforms = transforms;
    this.#key = key;
    this.#value = value;
  }

  async apply(records: readonly RecordInput[]): Promise<RecordInput[]> {
    const out: RecordInput[] = [];
    for (const record of records) out.push(record.control === true ? record : await this.#one(record));
    return out;
  }

  async #one(record: RecordInput): Promise<RecordInput> {
    const decoded: { key?: unknown; value?: unknown } = {};
    const field = async (path: FieldPath): Promise<string | undefined> => {
      if (!(path.part in decoded)) {
        const raw = record[path.part];
        const model = path.part === 'key' ? this.#key : this.#value;
        decoded[path.part] =
          raw === null ? undefined : model === undefined ? parseJson(raw) : await model.decode(raw);
      }
      const object = decoded[path.part];
      if (typeof object !== 'object' || object === null) return undefined;
      return asText((object as Record<string, unknown>)[path.field]);
    };
    let key = record.key;
    const extractKey = this.#transforms.extractKey;
    if (extractKey !== undefined) {
      const text = await field(extractKey);
      if (text !== undefined) key = Buffer.from(text, 'utf8');
    }
    const headers = [...(record.headers ?? [])];
    for (const [name, path] of this.#transforms.extractHeaders) {
      const text = await field(path);
      if (text !== undefined) headers.push({ name, value: Buffer.from(text, 'utf8') });
    }
    return { ...record, key, headers };
  }
}

/** The transforms of a cache_server's topics, by topic name (the first matching entry). */
export class CacheServerTransforms {
  readonly #entries: readonly {
    readonly name: { test(topic: string): boolean };
    readonly topic: TopicOptions;
  }[];
  readonly #catalogs: CatalogsJson;
  readonly #configFile: string | undefined;
  readonly #log: Logger;
  #built: ReadonlyMap<string, Catalog> | undefined;
  readonly #byTopic = new Map<string, RecordTransform | undefined>();

  constructor(topics: readonly TopicOptions[], catalogs: CatalogsJson, log: Logger, configFile?: string) {
    this.#entries = topics.map((topic) => ({ name: compileGlob(topic.name), topic }));
    this.#catalogs = catalogs;
    this.#configFile = configFile;
    this.#log = log;
  }

  forTopic(topic: string): RecordTransform | undefined {
    if (this.#byTopic.has(topic)) return this.#byTopic.get(topic);
    const entry = this.#entries.find((e) => e.name.test(topic))?.topic;
    let transform: RecordTransform | undefined;
    const transforms = entry?.transforms;
    if (entry !== undefined && transforms !== undefined) {
      this.#built ??= new Map(
        Object.entries(this.#catalogs).map(([name, json]) => [
          name,
          createCatalog(name, json, this.#configFile),
        ]),
      );
      const catalogs = this.#built;
      const skipped = (reason: string): void =>
        this.#log.debug({ topic, reason }, 'a record does not decode: its transforms are not applied');
      const model = (part: 'key' | 'value'): TopicModel | undefined => {
        const json = entry[part];
        return json === undefined ? undefined : new TopicModel(json, catalogs, topic, part, skipped);
      };
      transform = new TopicTransform(transforms, model('key'), model('value'));
    }
    this.#byTopic.set(topic, transform);
    return transform;
  }
}
