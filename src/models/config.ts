/**
 * Catalogs and models as the config schema admits them (src/config/model-schema.ts), and the
 * reading of them into what the models module works with.
 */

export type CatalogType =
  | 'inline'
  | 'filesystem'
  | 'schema-registry'
  | 'apicurio-registry'
  | 'apicurio'
  | 'karapace-schema-registry'
  | 'karapace';

export interface CatalogJson {
  readonly type: CatalogType;
  readonly options?: {
    readonly subjects?: {
      readonly [subject: string]: {
        readonly schema?: string;
        readonly version?: string;
        readonly path?: string;
      };
    };
    readonly url?: string;
    readonly context?: string;
    readonly 'max-age'?: number;
    readonly credentials?: { readonly headers?: { readonly authorization?: string } };
  };
}

export interface SchemaReferenceJson {
  readonly id?: number;
  readonly strategy?: 'topic' | 'encoded';
  readonly subject?: string;
  readonly version?: string;
  readonly record?: string;
}

export type ModelType = 'json' | 'avro' | 'protobuf';

export interface ModelJson {
  readonly model: ModelType;
  readonly view?: 'json';
  readonly catalog: { readonly [catalog: string]: readonly SchemaReferenceJson[] };
  readonly validate?: 'strict';
}

/** Catalogs by name, as the top-level `catalogs` of a loaded config holds them. */
export type CatalogsJson = { readonly [name: string]: CatalogJson };

/** Whether a catalog type is a schema registry reached over its Confluent-compatible REST API. */
export function isRegistry(type: CatalogType): boolean {
  return type !== 'inline' && type !== 'filesystem';
}

/** The one catalog a model names, with its schema references. */
export function modelCatalog(model: ModelJson): { name: string; refs: readonly SchemaReferenceJson[] } {
  const [entry] = Object.entries(model.catalog);
  if (entry === undefined) throw new Error('a model names no catalog');
  return { name: entry[0], refs: entry[1] };
}
