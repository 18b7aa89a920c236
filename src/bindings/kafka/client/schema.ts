import { COMMON_BINDING_PROPERTIES } from '../../../config/core-schema.ts';
import type { BindingSchema, ObjectSchemaFor } from '../../../config/json-schema.ts';
import type { ClientBindingOptionsJson } from './config.ts';
import { KAFKA_DEFINITIONS } from '../schema.ts';

const HOST_PORT = '(\\[[0-9a-fA-F:.]+\\]|[^\\s:,\\[\\]]+):[0-9]{1,5}';

export const kafkaClientSchema: BindingSchema = {
  binding: {
    description: 'Connects to Kafka brokers; cache servers fetch through it.',
    type: 'object',
    properties: {
      ...COMMON_BINDING_PROPERTIES,
      options: {
        description: 'Kafka client options.',
        type: 'object',
        properties: {
          servers: {
            description:
              'Bootstrap brokers as `host:port`. An entry may hold a comma-separated list, which is split into separate entries.',
            type: 'array',
            minItems: 1,
            items: {
              type: 'string',
              pattern: `^\\s*${HOST_PORT}\\s*(,\\s*${HOST_PORT}\\s*)*$`,
              patternErrorMessage: 'must be host:port',
            },
          },
          sasl: {
            description: 'SASL authentication with the brokers.',
            type: 'object',
            required: ['mechanism'],
            properties: {
              mechanism: {
                description: 'SASL mechanism.',
                enum: ['plain', 'scram-sha-256', 'scram-sha-512', 'oauthbearer'],
              },
              username: { description: 'User name (plain, scram).', type: 'string' },
              password: {
                description:
                  'Password (plain, scram); use `${{env.NAME}}` rather than writing it in the file.',
                type: 'string',
              },
              token: {
                description:
                  'Bearer token the brokers validate (oauthbearer); use `${{env.NAME}}` rather than writing it in the file. kgate sends it as given on every broker connection and does not renew it.',
                type: 'string',
                minLength: 1,
              },
            },
            // Not written as two if/then pairs: a missing user name is reported as plainly required.
            if: { properties: { mechanism: { const: 'oauthbearer' } }, required: ['mechanism'] },
            then: { required: ['token'] },
            else: { required: ['username', 'password'] },
            additionalProperties: false,
          },
          produce: {
            description: 'How produce requests to the brokers are retried.',
            type: 'object',
            properties: {
              deliveryTimeoutMs: {
                description:
                  'How long a produce keeps trying, through broker outages and leader changes, before it is answered (default 120000). By then its message is written, certainly not written (HTTP 503), or sent with no answer that settled it (HTTP 504 with `Kgate-Outcome: unknown`).',
                type: 'integer',
                minimum: 1,
              },
            },
            additionalProperties: false,
          },
          authorization: {
            description:
              'Credentials by guard name, in the form of later Zilla releases; an alternative to `sasl`. `{identity}` and `{credentials}` in a field stand for those of the `inline` guard of that name.',
            type: 'object',
            additionalProperties: {
              type: 'object',
              required: ['credentials'],
              properties: {
                credentials: {
                  description:
                    'Credential fields: `mechanism` (`plain` by default, `scram-sha-256`, `scram-sha-512`, `oauthbearer`), then `username` and `password`, or `token`.',
                  $ref: '#/definitions/stringMap',
                },
              },
              additionalProperties: false,
            },
          },
        },
        additionalProperties: false,
      } satisfies ObjectSchemaFor<ClientBindingOptionsJson>,
      routes: { $ref: '#/definitions/kafkaRoutes' },
      exit: {
        description:
          'Optional binding that carries the broker connections, such as a `tls` client; without it kgate connects directly.',
        $ref: '#/definitions/name',
      },
    },
    additionalProperties: false,
  },
  definitions: KAFKA_DEFINITIONS,
};
