import { isDeepStrictEqual } from 'node:util';
import { CORE_DEFINITIONS, CORE_SCHEMA } from './core-schema.ts';
import type { BindingSchema, JsonSchema, JsonSchemaObject } from './json-schema.ts';

/** A binding kind as the schema knows it: its type, its kind and its fragment. */
export interface SchemaKind {
  readonly type: string;
  readonly kind: string;
  readonly schema: BindingSchema;
}

/**
 * The whole config schema: the core sections and definitions, every kind's definitions, one
 * definition per kind named `<type>.<kind>`, and the `binding` selector that applies it. The
 * selector's if/then shape is what the loader reads the known types and kinds back from, and what
 * its messages for an unknown kind rely on. Kinds keep the order given, which the reference
 * documentation follows.
 */
export function assembleSchema(kinds: Iterable<SchemaKind>): JsonSchemaObject {
  const shared: Record<string, JsonSchema> = { ...CORE_DEFINITIONS };
  const own: Record<string, JsonSchema> = {};
  const kindsByType = new Map<string, string[]>();
  const pairs: [string, string][] = [];
  for (const { type, kind, schema } of kinds) {
    const name = `${type}.${kind}`;
    if (name in own) throw new Error(`binding ${type} ${kind} has two schemas`);
    own[name] = schema.binding;
    kindsByType.set(type, [...(kindsByType.get(type) ?? []), kind]);
    pairs.push([type, kind]);
    for (const [definition, value] of Object.entries(schema.definitions ?? {})) {
      const known = shared[definition];
      if (known !== undefined && known !== value && !isDeepStrictEqual(known, value))
        throw new Error(
          `schema definition ${definition} of binding ${type} ${kind} differs from another one`,
        );
      shared[definition] = value;
    }
  }
  for (const name of Object.keys(own))
    if (name in shared) throw new Error(`schema definition ${name} is named like a binding kind`);
  return { ...CORE_SCHEMA, definitions: { ...shared, ...own, binding: selector(kindsByType, pairs) } };
}

function selector(
  kindsByType: ReadonlyMap<string, readonly string[]>,
  pairs: readonly (readonly [string, string])[],
): JsonSchemaObject {
  const byType = [...kindsByType].map(([type, kinds]) => ({
    if: { properties: { type: { const: type } }, required: ['type'] },
    then: { properties: { kind: { enum: kinds } } },
  }));
  const byKind = pairs.map(([type, kind]) => ({
    if: { properties: { type: { const: type }, kind: { const: kind } }, required: ['type', 'kind'] },
    then: { $ref: `#/definitions/${type}.${kind}` },
  }));
  return {
    type: 'object',
    required: ['type', 'kind'],
    properties: {
      type: { description: 'Binding type.', enum: [...kindsByType.keys()] },
      kind: { description: 'Binding kind; which kinds exist depends on the type.', type: 'string' },
    },
    allOf: [...byType, ...byKind],
  };
}
