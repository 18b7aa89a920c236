import { readFileSync } from 'node:fs';
import { isAbsolute, resolve as resolvePath, dirname } from 'node:path';
import type { CatalogJson, SchemaReferenceJson } from './config.ts';
import { isRegistry } from './config.ts';
import { RegistryCatalog } from './registry.ts';
import { SchemaUnavailableError } from './errors.ts';

/** A schema as a catalog holds it: its id (what a registry's wire header carries), subject and text. */
export interface CatalogSchema {
  readonly id: number;
  readonly subject: string;
  readonly text: string;
}

export interface Catalog {
  readonly name: string;
  /** Whether values carry the registry wire header with the schema's id (registries do). */
  readonly framed: boolean;
  /** The schema a reference names, for the key or value of `topic`. */
  resolve(
    ref: SchemaReferenceJson,
    topic: string,
    part: 'key' | 'value',
    signal?: AbortSignal,
  ): Promise<CatalogSchema>;
  /** The schema with this id; for a registry, asked for when not known yet. */
  byId(id: number, signal?: AbortSignal): Promise<CatalogSchema>;
  /** The schema with this id if it is known without asking anyone. */
  knownById(id: number): CatalogSchema | undefined;
  /** Subjects resolvable without a registry: what `validate` can compile. */
  readonly local?: ReadonlyMap<string, CatalogSchema>;
}

/** The subject a reference names: its own, or by `strategy: topic` the topic's key or value subject. */
export function subjectOf(
  ref: SchemaReferenceJson,
  topic: string,
  part: 'key' | 'value',
): string | undefined {
  if (ref.subject !== undefined) return ref.subject;
  if (ref.strategy === 'topic') return `${topic}-${part}`;
  return undefined;
}

/**
 * Schemas written in the config (`inline`) or in files beside it (`filesystem`). They have no
 * registry ids: values are written without the wire header, and ids number the subjects in the
 * order they are written, from 1.
 */
class LocalCatalog implements Catalog {
  readonly name: string;
  readonly framed = false;
  readonly local: ReadonlyMap<string, CatalogSchema>;
  readonly #byId = new Map<number, CatalogSchema>();

  constructor(name: string, subjects: ReadonlyMap<string, string>) {
    this.name = name;
    const local = new Map<string, CatalogSchema>();
    let id = 1;
    for (const [subject, text] of subjects) {
      const schema = { id: id++, subject, text };
      local.set(subject, schema);
      this.#byId.set(schema.id, schema);
    }
    this.local = local;
  }

  resolve(ref: SchemaReferenceJson, topic: string, part: 'key' | 'value'): Promise<CatalogSchema> {
    try {
      return Promise.resolve(this.resolveNow(ref, topic, part));
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  resolveNow(ref: SchemaReferenceJson, topic: string, part: 'key' | 'value'): CatalogSchema {
    if (ref.id !== undefined) {
      const schema = this.#byId.get(ref.id);
      if (schema === undefined)
        throw new SchemaUnavailableError(`catalog ${this.name} has no schema with id ${ref.id}`);
      return schema;
    }
    const subject = subjectOf(ref, topic, part);
    const schema = subject === undefined ? undefined : this.local.get(subject);
    if (schema === undefined)
      throw new SchemaUnavailableError(`catalog ${this.name} has no subject ${subject ?? '(none named)'}`);
    return schema;
  }

  byId(id: number): Promise<CatalogSchema> {
    const schema = this.#byId.get(id);
    return schema === undefined
      ? Promise.reject(
          new SchemaUnavailableError(`catalog ${this.name} has no schema with id ${id}`, { missing: true }),
        )
      : Promise.resolve(schema);
  }

  knownById(id: number): CatalogSchema | undefined {
    return this.#byId.get(id);
  }
}

/** Where a filesystem catalog's file is: a relative path is beside the config file. */
export function catalogFile(path: string, configFile: string | undefined): string {
  if (isAbsolute(path) || configFile === undefined) return resolvePath(path);
  return resolvePath(dirname(configFile), path);
}

/** The catalog a config entry describes; a filesystem catalog reads its files now. */
export function createCatalog(name: string, json: CatalogJson, configFile?: string): Catalog {
  const options = json.options ?? {};
  if (isRegistry(json.type)) return new RegistryCatalog(name, json);
  const subjects = new Map<string, string>();
  for (const [subject, entry] of Object.entries(options.subjects ?? {})) {
    if (json.type === 'inline') subjects.set(subject, entry.schema ?? '');
    else subjects.set(subject, readFileSync(catalogFile(entry.path ?? '', configFile), 'utf8'));
  }
  return new LocalCatalog(name, subjects);
}
