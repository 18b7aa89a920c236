import type { JsonSchema, JsonSchemaObject } from './json-schema.ts';

/**
 * The schema of Zilla's top-level `catalogs` and of the models that refer to them (a kafka topic's
 * `key` and `value`, an http server request's `content`), in the shape of Zilla's catalog-* and
 * model-* schema patches. Whether a model names a catalog that exists, and a catalog's schemas
 * compile, is checked beside the schema (catalog-references.ts).
 */

export const CATALOG_TYPES = [
  'inline',
  'filesystem',
  'schema-registry',
  'apicurio-registry',
  'apicurio',
  'karapace-schema-registry',
  'karapace',
] as const;

export const MODEL_TYPES = ['json', 'avro', 'protobuf'] as const;

const SUBJECT_NAME: JsonSchemaObject = {
  type: 'string',
  pattern: '^[a-zA-Z]+[a-zA-Z0-9._\\-]*$',
  patternErrorMessage: 'must start with a letter and contain only letters, digits, ".", "_" and "-"',
};

const VERSION: JsonSchemaObject = {
  description: '`latest` (the default) or a version number.',
  type: 'string',
  pattern: '^(latest|[0-9]+)$',
  patternErrorMessage: 'must be "latest" or a version number',
};

function catalogOptions(type: string | readonly string[], options: JsonSchemaObject): JsonSchemaObject {
  const selector: JsonSchemaObject = typeof type === 'string' ? { const: type } : { enum: type };
  return {
    if: { required: ['type'], properties: { type: selector } },
    then: { properties: { options: options } },
  };
}

const REGISTRY_OPTIONS: JsonSchemaObject = {
  description: 'Where the registry is and how long its answers are kept.',
  type: 'object',
  required: ['url'],
  properties: {
    url: {
      description: 'Base URL of the registry, `http://` or `https://`.',
      type: 'string',
      pattern: '^https?://',
      patternErrorMessage: 'must be an http:// or https:// URL',
    },
    context: {
      description: 'Registry context (Zilla). Only `default` is served.',
      type: 'string',
      enum: ['default'],
    },
    'max-age': {
      description:
        'Seconds a subject version resolved by `version: latest` is kept before it is asked for again (default 300). Schemas by id never change and are kept for the life of the process.',
      type: 'integer',
      minimum: 0,
    },
    credentials: {
      description: 'Sent with every request to the registry.',
      type: 'object',
      properties: {
        headers: {
          type: 'object',
          properties: { authorization: { type: 'string' } },
          additionalProperties: false,
        },
      },
      additionalProperties: false,
    },
  },
  additionalProperties: false,
};

export const MODEL_DEFINITIONS: { readonly [name: string]: JsonSchema } = {
  catalog: {
    description:
      'A catalog of schemas: `inline` (in this file), `filesystem` (files beside it), or a schema registry speaking the Confluent-compatible REST API (`schema-registry`, `karapace-schema-registry`, `apicurio-registry` through its `/apis/ccompat/v7` endpoint).',
    type: 'object',
    required: ['type'],
    properties: {
      type: { description: 'Catalog type.', enum: CATALOG_TYPES },
      options: { type: 'object' },
    },
    additionalProperties: false,
    allOf: [
      catalogOptions('inline', {
        type: 'object',
        properties: {
          subjects: {
            description: 'Schemas by subject, their text in this file.',
            type: 'object',
            propertyNames: SUBJECT_NAME,
            additionalProperties: {
              type: 'object',
              required: ['schema'],
              properties: { version: VERSION, schema: { type: 'string', minLength: 1 } },
              additionalProperties: false,
            },
          },
        },
        additionalProperties: false,
      }),
      catalogOptions('filesystem', {
        type: 'object',
        properties: {
          subjects: {
            description: 'Schemas by subject, each in a file; a relative path is beside the config file.',
            type: 'object',
            propertyNames: SUBJECT_NAME,
            additionalProperties: {
              type: 'object',
              required: ['path'],
              properties: { path: { type: 'string', minLength: 1 } },
              additionalProperties: false,
            },
          },
        },
        additionalProperties: false,
      }),
      catalogOptions(['schema-registry', 'karapace-schema-registry', 'karapace'], REGISTRY_OPTIONS),
      catalogOptions(['apicurio-registry', 'apicurio'], {
        ...REGISTRY_OPTIONS,
        properties: {
          url: REGISTRY_OPTIONS.properties?.['url'] ?? true,
          'max-age': REGISTRY_OPTIONS.properties?.['max-age'] ?? true,
          'group-id': {
            description: 'Artifact group (Zilla). Only `default` is served.',
            type: 'string',
            enum: ['default'],
          },
          'use-id': {
            description:
              'Which id the wire header carries (Zilla). Through the ccompat API ids are global ids: only `globalId`.',
            type: 'string',
            enum: ['globalId'],
          },
          'id-encoding': {
            description: 'How the id is written (Zilla). Only `default`: the 4-byte Confluent header.',
            type: 'string',
            enum: ['default'],
          },
        },
      }),
    ],
  },
  schemaReference: {
    description:
      'Which schema of the catalog: by `id`, by `subject` and `version`, or by `strategy` (`topic`: the subject `<topic>-value` or `<topic>-key`; `encoded`: the id the value carries). A protobuf model names its message type in `record`.',
    type: 'object',
    properties: {
      id: { type: 'integer', minimum: 0 },
      strategy: { type: 'string', enum: ['topic', 'encoded'] },
      subject: { type: 'string', minLength: 1 },
      version: VERSION,
      record: { type: 'string', minLength: 1 },
    },
    additionalProperties: false,
    anyOf: [{ required: ['id'] }, { required: ['strategy'] }, { required: ['subject'] }],
  },
  model: {
    description:
      'How values are shaped: `json` (JSON Schema), `avro` or `protobuf`, with the schema from a catalog. `view: json` serves readers JSON and takes JSON to produce.',
    type: 'object',
    required: ['model', 'catalog'],
    properties: {
      model: { description: 'Model type.', enum: MODEL_TYPES },
      view: { description: 'What readers see and producers send: `json`.', enum: ['json'] },
      catalog: {
        description: 'One catalog by name, with the schemas to use from it (the first is used to produce).',
        type: 'object',
        minProperties: 1,
        maxProperties: 1,
        propertyNames: { $ref: '#/definitions/name' },
        additionalProperties: {
          type: 'array',
          minItems: 1,
          items: { $ref: '#/definitions/schemaReference' },
        },
      },
      validate: {
        description: 'Zilla validation mode; kgate always validates strictly.',
        enum: ['strict'],
      },
    },
    additionalProperties: false,
  },
};
