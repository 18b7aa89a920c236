import type { Catalog } from './catalog.ts';
import type { CompiledSchema } from './compiled.ts';
import { compileSchema } from './compiled.ts';
import type { ModelJson, SchemaReferenceJson } from './config.ts';
import { modelCatalog } from './config.ts';
import { InvalidContentError, SchemaUnavailableError } from './errors.ts';
import { encodeMessageIndexes, frame, unframe, decodeMessageIndexes } from './wire.ts';

/** What a reader with `view: json` gets for a stored value. */
export type ViewResult =
  | { readonly value: Buffer }
  /** The value does not decode: JSON readers skip it; `reason` is what the log and metric say. */
  | { readonly skip: string }
  /** The schema is being fetched from the registry: ask again once this settles. */
  | { readonly pending: Promise<unknown> };

// Converted values shared by every reader of the model: a fan-out of one record to many streams
// converts it once. Bounded by entries and bytes; the oldest go first.
const MEMO_ENTRIES = 16384;
const MEMO_BYTES = 32 * 1024 * 1024;

interface MemoEntry {
  readonly partition: number;
  readonly offset: number;
  readonly raw: Buffer;
  readonly result: ViewResult;
}

function sizeOf(entry: MemoEntry): number {
  return entry.raw.length + ('value' in entry.result ? entry.result.value.length : 0);
}

/**
 * The model of one part (key or value) of one topic: encodes what producers send, and gives JSON
 * readers the JSON view of what is stored. Schemas compile once per id.
 */
export class TopicModel {
  readonly topic: string;
  readonly part: 'key' | 'value';
  readonly view: boolean;
  readonly #model: ModelJson;
  readonly #catalog: Catalog;
  readonly #ref: SchemaReferenceJson;
  readonly #compiled = new Map<number, CompiledSchema>();
  /** By partition, then offset. */
  readonly #memo = new Map<number, Map<number, MemoEntry>>();
  /** Entries oldest first, from `#oldest`; evicted ones are left undefined until compacted. */
  #order: (MemoEntry | undefined)[] = [];
  #oldest = 0;
  /** Ids the registry answered it does not have. */
  readonly #missing = new Set<number>();
  #memoBytes = 0;
  /** Values converted, not counting those served from the memo. */
  conversions = 0;
  /** Told once per stored value that does not decode (not once per reader). */
  readonly #onSkip: ((reason: string) => void) | undefined;

  constructor(
    model: ModelJson,
    catalogs: ReadonlyMap<string, Catalog>,
    topic: string,
    part: 'key' | 'value',
    onSkip?: (reason: string) => void,
  ) {
    this.#onSkip = onSkip;
    const { name, refs } = modelCatalog(model);
    const catalog = catalogs.get(name);
    if (catalog === undefined) throw new Error(`no catalog ${name}`);
    const ref = refs[0];
    if (ref === undefined) throw new Error(`the model names no schema of catalog ${name}`);
    this.#model = model;
    this.#catalog = catalog;
    this.#ref = ref;
    this.topic = topic;
    this.part = part;
    this.view = model.view === 'json';
  }

  get #label(): string {
    return `${this.#catalog.name}`;
  }

  #compile(id: number, subject: string, text: string): CompiledSchema {
    let compiled = this.#compiled.get(id);
    if (compiled === undefined) {
      compiled = compileSchema(this.#model.model, text, `${this.#label}/${subject}`, this.#ref.record);
      this.#compiled.set(id, compiled);
    }
    return compiled;
  }

  /**
   * A produced value as it goes to Kafka: JSON encoded by the schema with `view: json`, else checked
   * to be in the model's form; with the registry's wire header when the catalog is a registry.
   * Rejects with InvalidContentError (400) or SchemaUnavailableError (503).
   */
  async encode(value: Buffer, signal?: AbortSignal): Promise<Buffer> {
    if (this.#ref.strategy === 'encoded') {
      // The producer framed the value itself: check it against the schema its header names.
      const framed = unframe(value);
      if (framed === undefined)
        throw new InvalidContentError(
          this.#catalog.name,
          '',
          'it does not start with the schema registry header (magic byte 0 and a 4-byte schema id)',
        );
      let schema;
      try {
        schema = await this.#catalog.byId(framed.id, signal);
      } catch (error) {
        if (error instanceof SchemaUnavailableError && error.missing)
          throw new InvalidContentError(
            this.#catalog.name,
            '',
            `its header names schema id ${framed.id}, which the registry does not have`,
          );
        throw error;
      }
      const compiled = this.#compile(schema.id, schema.subject, schema.text);
      compiled.check(this.#bodyOf(compiled, framed.body));
      return value;
    }
    const schema = await this.#catalog.resolve(this.#ref, this.topic, this.part, signal);
    const compiled = this.#compile(schema.id, schema.subject, schema.text);
    let body: Buffer;
    if (this.view) body = compiled.fromJson(value);
    else {
      compiled.check(value);
      body = value;
    }
    if (!this.#catalog.framed) return body;
    const indexes = compiled.messageIndexes;
    return frame(schema.id, body, indexes === undefined ? undefined : encodeMessageIndexes(indexes));
  }

  #bodyOf(compiled: CompiledSchema, afterId: Buffer): Buffer {
    if (compiled.messageIndexes === undefined) return afterId;
    return decodeMessageIndexes(afterId)?.rest ?? afterId;
  }

  /**
   * The JSON view of a stored value at `partition`/`offset`, converted once for all readers:
   * a value met again (the same bytes at the same place) is served from the memo.
   */
  viewOf(partition: number, offset: bigint, raw: Buffer): ViewResult {
    // Offsets stay far below 2^53; a number hashes much faster than a bigint.
    const at = Number(offset);
    let memo = this.#memo.get(partition);
    const held = memo?.get(at);
    if (held !== undefined && held.raw.equals(raw)) return held.result;
    const result = this.#convert(raw);
    if ('pending' in result) return result;
    this.conversions++;
    if ('skip' in result) this.#onSkip?.(result.skip);
    if (memo === undefined) {
      memo = new Map();
      this.#memo.set(partition, memo);
    }
    const entry: MemoEntry = { partition, offset: at, raw, result };
    memo.set(at, entry);
    this.#order.push(entry);
    this.#memoBytes += sizeOf(entry);
    while (this.#order.length - this.#oldest > MEMO_ENTRIES || this.#memoBytes > MEMO_BYTES) this.#evict();
    return result;
  }

  /**
   * Drops the oldest entry. The order is a queue read from `#oldest` rather than the first key
   * of a Map: finding a Map's first key after many deletions walks every deleted slot.
   */
  #evict(): void {
    const entry = this.#order[this.#oldest];
    if (entry === undefined) return;
    this.#order[this.#oldest] = undefined;
    this.#oldest++;
    this.#memoBytes -= sizeOf(entry);
    const memo = this.#memo.get(entry.partition);
    // A value replaced at the same place has a newer entry of its own further back in the queue.
    if (memo?.get(entry.offset) === entry) memo.delete(entry.offset);
    if (this.#oldest > 1024 && this.#oldest * 2 > this.#order.length) {
      this.#order = this.#order.slice(this.#oldest);
      this.#oldest = 0;
    }
  }

  /**
   * The stored value decoded to a JSON value, the schema fetched if need be; undefined when it
   * does not decode. For what is computed once per record at ingest (transforms), not per reader.
   */
  async decode(raw: Buffer): Promise<unknown> {
    for (;;) {
      const result = this.#convert(raw);
      if ('pending' in result) {
        await result.pending;
        continue;
      }
      if ('skip' in result) return undefined;
      return JSON.parse(result.value.toString('utf8'));
    }
  }

  /**
   * Asks the catalog for a schema id met in a stored value. An id the registry says it does not
   * have is remembered as such: values carrying it are skipped rather than ending the read.
   */
  #fetchSchema(id: number): Promise<unknown> {
    return this.#catalog.byId(id).catch((error: unknown) => {
      if (!(error instanceof SchemaUnavailableError) || !error.missing) throw error;
      this.#missing.add(id);
    });
  }

  #convert(raw: Buffer): ViewResult {
    let compiled: CompiledSchema | undefined;
    let body = raw;
    if (this.#catalog.framed) {
      const framed = unframe(raw);
      if (framed === undefined) return { skip: 'no schema registry header' };
      compiled = this.#compiled.get(framed.id);
      if (compiled === undefined && this.#missing.has(framed.id))
        return { skip: `schema id ${framed.id} is not in the registry` };
      if (compiled === undefined) {
        const known = this.#catalog.knownById(framed.id);
        if (known === undefined) return { pending: this.#fetchSchema(framed.id) };
        try {
          compiled = this.#compile(known.id, known.subject, known.text);
        } catch {
          return { skip: `schema id ${framed.id} does not compile as ${this.#model.model}` };
        }
      }
      body = this.#bodyOf(compiled, framed.body);
    } else {
      const local = this.#catalog.local;
      const schema = local === undefined ? undefined : this.#localSchema();
      if (schema === undefined) return { skip: 'schema not found in its catalog' };
      compiled = this.#compile(schema.id, schema.subject, schema.text);
    }
    try {
      return { value: compiled.toJson(body) };
    } catch {
      return { skip: `does not decode as ${this.#model.model} of its schema` };
    }
  }

  #localSchema(): { id: number; subject: string; text: string } | undefined {
    const local = this.#catalog.local;
    if (local === undefined) return undefined;
    if (this.#ref.id !== undefined) return this.#catalog.knownById(this.#ref.id);
    const subject =
      this.#ref.subject ?? (this.#ref.strategy === 'topic' ? `${this.topic}-${this.part}` : undefined);
    return subject === undefined ? undefined : local.get(subject);
  }
}
