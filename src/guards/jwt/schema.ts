import type { JsonSchemaObject, ObjectSchemaFor } from '../../config/json-schema.ts';
import type { JwtGuardOptionsJson } from './options.ts';

const CLAIM_NAME = {
  type: 'string',
  pattern: '^[^\\s]+$',
  patternErrorMessage: 'must name a claim',
} as const;

/** The options of a guard of type `jwt`, in Zilla's guard-jwt shape. */
export const JWT_GUARD_OPTIONS = {
  description: 'JWT guard options: which tokens are valid, and what they grant.',
  type: 'object',
  properties: {
    issuer: { description: 'The `iss` a token must carry.', type: 'string' },
    audience: { description: 'An `aud` a token must carry (one of its audiences).', type: 'string' },
    roles: {
      description:
        'The claim holding the scopes a token grants: space separated or a list. Default `scope`; without it, `scp` is read too.',
      ...CLAIM_NAME,
    },
    keys: {
      description:
        'The public keys tokens are signed with: a list of JWKs (each with `kty` and `kid`; `alg` pins the algorithm), or the `http://` or `https://` URL of a JWK set, fetched at start, cached, and fetched again when a token names a `kid` it lacks.',
      anyOf: [
        {
          type: 'string',
          pattern: '^https?://',
          patternErrorMessage: 'must be an http:// or https:// URL of a JWK set',
        },
        {
          type: 'array',
          minItems: 1,
          items: {
            type: 'object',
            required: ['kty', 'kid'],
            properties: {
              kty: { description: 'Key type: `RSA`, `EC`, `OKP` or `oct`.', type: 'string' },
              kid: { description: 'Key id tokens name in their header.', type: 'string', minLength: 1 },
              alg: { description: 'The one algorithm tokens signed with this key may use.', type: 'string' },
            },
          },
        },
      ],
    },
    challenge: {
      description:
        'Seconds before a token expires at which an event stream it authorised gets a `challenge` event, so the client can renew its token in time.',
      type: 'integer',
      minimum: 0,
    },
    identity: { description: 'The claim naming the client. Default `sub`.', ...CLAIM_NAME },
    attributes: {
      description:
        "Attributes offered to route templates as `${guarded['guard'].attributes.name}`: name to claim path, dot separated.",
      type: 'object',
      propertyNames: {
        type: 'string',
        pattern: '^[a-zA-Z]+[a-zA-Z0-9._-]*$',
        patternErrorMessage: 'must start with a letter and contain only letters, digits, ".", "_" and "-"',
      },
      additionalProperties: { type: 'string' },
    },
  },
  required: ['keys'],
  additionalProperties: false,
} satisfies ObjectSchemaFor<JwtGuardOptionsJson>;

/**
 * One entry of the top-level `guards`: `jwt` verifies the credentials of requests; `inline` holds
 * an identity and credentials written in the config, for a kafka client's `authorization`.
 */
export const GUARD_DEFINITION: JsonSchemaObject = {
  description:
    'A guard: `jwt` verifies the tokens requests present; `inline` holds an identity and credentials for a kafka client.',
  type: 'object',
  required: ['type', 'options'],
  properties: {
    type: { description: 'Guard type.', enum: ['jwt', 'inline'] },
    options: { description: 'The options of the guard type.', type: 'object' },
  },
  additionalProperties: false,
  allOf: [
    {
      if: { properties: { type: { const: 'jwt' } } },
      then: { properties: { options: { $ref: '#/definitions/jwtGuardOptions' } } },
    },
    {
      if: { properties: { type: { const: 'inline' } } },
      then: {
        properties: {
          options: {
            type: 'object',
            properties: {
              identity: { description: "`{identity}` in a kafka client's credentials.", type: 'string' },
              credentials: {
                description: "`{credentials}` in a kafka client's credentials.",
                type: 'string',
              },
            },
            additionalProperties: false,
          },
        },
      },
    },
  ],
};
