import type { Catalog, CatalogSchema } from './catalog.ts';
import { subjectOf } from './catalog.ts';
import type { CatalogJson, SchemaReferenceJson } from './config.ts';
import { SchemaUnavailableError } from './errors.ts';

/** How long one request to the registry may take. */
const REQUEST_TIMEOUT_MS = 5000;
const DEFAULT_MAX_AGE_S = 300;

interface RegistrySchemaAnswer {
  readonly id?: unknown;
  readonly schema?: unknown;
  readonly subject?: unknown;
}

/** The base URL of the Confluent-compatible API: Apicurio serves it under /apis/ccompat/v7. */
function apiBase(json: CatalogJson): string {
  const url = (json.options?.url ?? '').replace(/\/+$/, '');
  if ((json.type === 'apicurio-registry' || json.type === 'apicurio') && !url.endsWith('/apis/ccompat/v7'))
    return `${url}/apis/ccompat/v7`;
  return url;
}

/**
 * A schema registry over its Confluent-compatible REST API (`/schemas/ids/{id}`,
 * `/subjects/{subject}/versions/{version}`). Schemas by id never change and are kept for the life
 * of the process; a subject's `latest` version is asked for again after `max-age` seconds. An id
 * not known yet is asked for when a value carrying it is met; concurrent asks share one request.
 */
export class RegistryCatalog implements Catalog {
  readonly name: string;
  readonly framed = true;
  readonly #base: string;
  readonly #headers: Record<string, string>;
  readonly #maxAgeMs: number;
  readonly #byId = new Map<number, CatalogSchema>();
  readonly #asking = new Map<string, Promise<CatalogSchema>>();
  readonly #versions = new Map<string, { schema: CatalogSchema; at: number }>();

  constructor(name: string, json: CatalogJson) {
    this.name = name;
    this.#base = apiBase(json);
    const authorization = json.options?.credentials?.headers?.authorization;
    this.#headers = {
      accept: 'application/vnd.schemaregistry.v1+json, application/json',
      ...(authorization === undefined ? {} : { authorization }),
    };
    const { 'max-age': maxAge = DEFAULT_MAX_AGE_S } = json.options ?? {};
    this.#maxAgeMs = maxAge * 1000;
  }

  knownById(id: number): CatalogSchema | undefined {
    return this.#byId.get(id);
  }

  byId(id: number, signal?: AbortSignal): Promise<CatalogSchema> {
    const known = this.#byId.get(id);
    if (known !== undefined) return Promise.resolve(known);
    return this.#ask(`/schemas/ids/${id}`, signal, (answer) => {
      if (typeof answer.schema !== 'string') throw new Error('the answer has no schema');
      return {
        id,
        subject: typeof answer.subject === 'string' ? answer.subject : `id ${id}`,
        text: answer.schema,
      };
    });
  }

  async resolve(
    ref: SchemaReferenceJson,
    topic: string,
    part: 'key' | 'value',
    signal?: AbortSignal,
  ): Promise<CatalogSchema> {
    if (ref.id !== undefined) return this.byId(ref.id, signal);
    const subject = subjectOf(ref, topic, part);
    if (subject === undefined)
      throw new SchemaUnavailableError(
        `catalog ${this.name}: a value with strategy encoded names its schema by id`,
      );
    const version = ref.version ?? 'latest';
    const key = `${subject}\n${version}`;
    const held = this.#versions.get(key);
    // A numbered version never changes; `latest` is kept for max-age.
    if (held !== undefined && (version !== 'latest' || Date.now() - held.at < this.#maxAgeMs))
      return held.schema;
    try {
      const path = `/subjects/${encodeURIComponent(subject)}/versions/${encodeURIComponent(version)}`;
      const schema = await this.#ask(path, signal, (answer) => {
        if (typeof answer.id !== 'number' || typeof answer.schema !== 'string')
          throw new Error('the answer has no id and schema');
        return { id: answer.id, subject, text: answer.schema };
      });
      this.#versions.set(key, { schema, at: Date.now() });
      return schema;
    } catch (error) {
      // A registry down while a version is held: the version held serves until it comes back.
      if (held !== undefined) return held.schema;
      throw error;
    }
  }

  #ask(
    path: string,
    signal: AbortSignal | undefined,
    read: (answer: RegistrySchemaAnswer) => CatalogSchema,
  ): Promise<CatalogSchema> {
    const pending = this.#asking.get(path);
    if (pending !== undefined) return pending;
    const asking = this.#fetch(path, signal, read).finally(() => this.#asking.delete(path));
    this.#asking.set(path, asking);
    return asking;
  }

  async #fetch(
    path: string,
    signal: AbortSignal | undefined,
    read: (answer: RegistrySchemaAnswer) => CatalogSchema,
  ): Promise<CatalogSchema> {
    const url = `${this.#base}${path}`;
    const timeout = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
    let response: Response;
    try {
      response = await fetch(url, {
        headers: this.#headers,
        signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]),
      });
    } catch (error) {
      throw new SchemaUnavailableError(
        `schema registry of catalog ${this.name} not reachable at ${this.#base}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new SchemaUnavailableError(
        `schema registry of catalog ${this.name} answered ${response.status} for ${path}`,
        { missing: response.status === 404 },
      );
    }
    let schema: CatalogSchema;
    try {
      schema = read((await response.json()) as RegistrySchemaAnswer);
    } catch (error) {
      throw new SchemaUnavailableError(
        `schema registry of catalog ${this.name} answered ${path} with what is not a schema: ${(error as Error).message}`,
        { cause: error },
      );
    }
    this.#byId.set(schema.id, schema);
    return schema;
  }
}
