import { COMMON_BINDING_PROPERTIES, EXIT_REQUIRED_WITHOUT_ROUTES } from '../../../config/core-schema.ts';
import type { BindingSchema, ObjectSchemaFor } from '../../../config/json-schema.ts';
import { KAFKA_DEFINITIONS } from '../schema.ts';
import type { CacheClientOptionsJson } from './options.ts';

export const cacheClientSchema: BindingSchema = {
  binding: {
    description: 'Serves readers from the cache filled by a cache server.',
    type: 'object',
    properties: {
      ...COMMON_BINDING_PROPERTIES,
      options: {
        description: 'Cache client options.',
        type: 'object',
        properties: {
          topics: { $ref: '#/definitions/kafkaTopics' },
          staging: {
            description:
              'Memory for values produced in pieces (HTTP request bodies), held from their first byte until the broker acknowledges them.',
            type: 'object',
            properties: {
              maxBytes: {
                description:
                  'Bytes all producers of this binding may stage at once (default 64 MiB). A write past it waits, and the HTTP request body is not read further, until acknowledgements free room. Keep it well above the largest `max.message.bytes` of the topics produced to; a single value larger than the budget is refused (HTTP 413).',
                type: 'integer',
                minimum: 1024,
              },
              stallMs: {
                description:
                  "While a write waits for the budget, a request body staged here that sends nothing for this many milliseconds is given up (HTTP 408) and its bytes go to bodies that are arriving (default 5000). Without another write waiting, the http server's `timeouts.body-idle` applies.",
                type: 'integer',
                minimum: 1,
              },
              maxBytesPerConnection: {
                description:
                  "Bytes the request bodies of one client connection may stage at once (default: an eighth of `maxBytes`). A connection's oldest body may always grow to its topic's `max.message.bytes`; its others (HTTP/2 carries many on one connection) wait, unread, while they would pass this share, without holding up other connections. So one client whose bodies stall cannot take the whole budget; stalled bodies are let go by the http server's body timeouts.",
                type: 'integer',
                minimum: 1024,
              },
            },
            additionalProperties: false,
          },
        },
        additionalProperties: false,
      } satisfies ObjectSchemaFor<CacheClientOptionsJson>,
      routes: { $ref: '#/definitions/kafkaRoutes' },
      exit: {
        description:
          'The `kafka` cache server to read from when no route matches. Required unless there are routes.',
        $ref: '#/definitions/name',
      },
    },
    additionalProperties: false,
    ...EXIT_REQUIRED_WITHOUT_ROUTES,
  },
  definitions: KAFKA_DEFINITIONS,
};
