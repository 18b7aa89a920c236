import type { JsonSchema, JsonSchemaObject } from './json-schema.ts';
import { MODEL_DEFINITIONS } from './model-schema.ts';
import { GUARD_DEFINITION, JWT_GUARD_OPTIONS } from '../guards/jwt/schema.ts';
import { TELEMETRY_DEFINITIONS } from './telemetry-schema.ts';
import { VAULT_DEFINITIONS } from '../vaults/schema.ts';

/**
 * The part of the config schema that is not any one binding's: the top-level sections, telemetry,
 * and the definitions every binding's schema fragment may refer to. The `binding` definition, which
 * picks a fragment by type and kind, is assembled from the kinds (see assemble-schema.ts).
 */
export const CORE_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'kgate configuration',
  description:
    "A kgate configuration file: named bindings wired together by exits and routes, in the shape of Zilla's zilla.yaml.",
  type: 'object',
  required: ['bindings'],
  properties: {
    name: {
      description: 'Name of this configuration, used in logs and metrics. Defaults to `kgate`.',
      $ref: '#/definitions/name',
    },
    bindings: {
      description:
        'Bindings by name. Each binding has a `type` and a `kind`; the pair selects which options, routes and exits it accepts.',
      type: 'object',
      minProperties: 1,
      propertyNames: { $ref: '#/definitions/name' },
      additionalProperties: { $ref: '#/definitions/binding' },
    },
    telemetry: {
      description:
        "Telemetry in Zilla's shape: `metrics` names the Zilla metrics collected, exporters of type `prometheus` serve them with kgate's own metrics, `/health` and `/ready` over HTTP, and `stdout` exporters print events as log lines. `otlp` exporters and `attributes` are accepted and ignored, with a warning.",
      $ref: '#/definitions/telemetry',
    },
    guards: {
      description:
        "Guards by name, in Zilla's shape: an http server's `authorization` names the guard that verifies its requests' credentials, and routes' `guarded` the scopes it must grant.",
      type: 'object',
      propertyNames: { $ref: '#/definitions/name' },
      additionalProperties: { $ref: '#/definitions/guard' },
    },
    vaults: {
      description:
        "Key stores by name, in the shape of Zilla's `filesystem` vaults: tls bindings name one with `vault` and its entries by alias.",
      type: 'object',
      propertyNames: { $ref: '#/definitions/name' },
      additionalProperties: { $ref: '#/definitions/vaultDefinition' },
    },
    catalogs: {
      description:
        'Schema catalogs by name, which the models of kafka topics (`key`, `value`) and of http server requests (`content`) take their schemas from. See docs/models.md.',
      type: 'object',
      propertyNames: { $ref: '#/definitions/name' },
      additionalProperties: { $ref: '#/definitions/catalog' },
    },
  },
  additionalProperties: false,
} satisfies JsonSchemaObject;

const PORT_ITEM: readonly JsonSchema[] = [
  { type: 'integer', minimum: 0, maximum: 65535 },
  {
    type: 'string',
    pattern: '^[0-9]+(-[0-9]+)?$',
    patternErrorMessage: 'must be a port number or a range like "8080-8089"',
  },
];

export const CORE_DEFINITIONS: { readonly [name: string]: JsonSchema } = {
  name: {
    type: 'string',
    pattern: '^[a-zA-Z]+[a-zA-Z0-9._\\-]*$',
    patternErrorMessage: 'must start with a letter and contain only letters, digits, ".", "_" and "-"',
  },
  exit: {
    description: 'Name of the binding that receives streams from this one.',
    $ref: '#/definitions/name',
  },
  vault: {
    description:
      "Name of the vault whose stores the binding's `keys`, `trust` and `signers` aliases are in (tls bindings).",
    type: 'string',
  },
  ...VAULT_DEFINITIONS,
  ...TELEMETRY_DEFINITIONS,
  ...MODEL_DEFINITIONS,
  guard: GUARD_DEFINITION,
  jwtGuardOptions: JWT_GUARD_OPTIONS,
  guarded: {
    description:
      'Scopes each named guard must grant for a request to take this route; a request they are not granted to passes on to the next route.',
    type: 'object',
    minProperties: 1,
    additionalProperties: { type: 'array', items: { type: 'string' } },
  },
  port: {
    description: 'A port number, a range string such as `"8080-8089"`, or an array of either.',
    anyOf: [...PORT_ITEM, { type: 'array', minItems: 1, items: { anyOf: PORT_ITEM } }],
  },
  stringList: { type: 'array', items: { type: 'string' } },
  stringMap: { type: 'object', additionalProperties: { type: 'string' } },
};

/** The fields every binding has besides its own: `type` and `kind` are checked by the selector. */
export const COMMON_BINDING_PROPERTIES = {
  type: true,
  kind: true,
  vault: { $ref: '#/definitions/vault' },
  telemetry: { $ref: '#/definitions/bindingTelemetry' },
} satisfies { readonly [name: string]: JsonSchema };

/** For a binding that needs a default exit unless it has routes to choose one. */
export const EXIT_REQUIRED_WITHOUT_ROUTES = {
  if: { not: { required: ['routes'] } },
  then: { required: ['exit'] },
} satisfies JsonSchemaObject;

/**
 * A route's `when`: a list of conditions of which any one makes the route match, each a closed
 * object whose entries must all match.
 */
export function anyOfConditions(properties: { readonly [name: string]: JsonSchema }): JsonSchemaObject {
  return {
    description: 'Conditions; the route matches if any of them does.',
    type: 'array',
    items: { type: 'object', properties, additionalProperties: false },
  };
}

/** The `routes` of a binding that picks one exit per stream by conditions: tried in order. */
export function conditionalRoutes(when: JsonSchema): JsonSchemaObject {
  return {
    description: 'Conditional routes, tried in order; the first match wins.',
    type: 'array',
    items: {
      type: 'object',
      required: ['exit'],
      properties: {
        when,
        exit: { $ref: '#/definitions/exit' },
        guarded: { $ref: '#/definitions/guarded' },
      },
      additionalProperties: false,
    },
  };
}
