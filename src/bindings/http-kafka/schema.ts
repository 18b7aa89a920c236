import { anyOfConditions, COMMON_BINDING_PROPERTIES } from '../../config/core-schema.ts';
import type { BindingSchema, ObjectSchemaFor } from '../../config/json-schema.ts';
import { KAFKA_DEFINITIONS } from '../kafka/schema.ts';
import type { HttpKafkaOptionsJson } from './options.ts';

export const httpKafkaProxySchema: BindingSchema = {
  binding: {
    description:
      'Maps HTTP requests to Kafka: fetches (GET) read from the cache, produces (POST, PUT, PATCH, DELETE) write messages, optionally waiting for a correlated reply.',
    type: 'object',
    required: ['routes'],
    properties: {
      ...COMMON_BINDING_PROPERTIES,
      options: {
        description: 'HTTP to Kafka options.',
        type: 'object',
        properties: {
          idempotency: {
            description: 'Idempotent produce.',
            type: 'object',
            required: ['header'],
            properties: {
              header: {
                description: 'Request header holding the idempotency key. Defaults to `idempotency-key`.',
                type: 'string',
              },
            },
            additionalProperties: false,
          },
          correlation: {
            description: 'Kafka headers used to correlate requests with replies.',
            type: 'object',
            required: ['headers'],
            properties: {
              headers: {
                description: 'Kafka header names.',
                type: 'object',
                properties: {
                  'reply-to': {
                    description: 'Reply topic header. Defaults to `zilla:reply-to`.',
                    type: 'string',
                  },
                  'correlation-id': {
                    description: 'Correlation id header. Defaults to `zilla:correlation-id`.',
                    type: 'string',
                  },
                },
                additionalProperties: false,
              },
            },
            additionalProperties: false,
          },
          limits: {
            description:
              'What the binding holds at once for fetches; a request past a bound is answered 503 with `Retry-After`.',
            type: 'object',
            properties: {
              'snapshot-reads': {
                description:
                  'Reads of a topic for fetch answers (merged documents, and the latest message of routes that do not pin a key) in progress at once, over every route (default 8). An answer is read once per version and shared by every request that wants it, so requests for the same answer count once.',
                type: 'integer',
                minimum: 1,
              },
              waits: {
                description: 'Fetch requests holding a `Prefer: wait` at once (default 10000).',
                type: 'integer',
                minimum: 1,
              },
            },
            additionalProperties: false,
          },
        },
        additionalProperties: false,
      } satisfies ObjectSchemaFor<HttpKafkaOptionsJson>,
      routes: {
        description: 'Request mappings, tried in order; the first match wins.',
        type: 'array',
        minItems: 1,
        items: {
          type: 'object',
          required: ['exit', 'with'],
          properties: {
            when: anyOfConditions({
              method: { description: 'Request method, such as `GET`.', type: 'string' },
              path: {
                description:
                  'Request path (without its query); `{name}` captures one or more characters, `/` included as Zilla does, as `${params.name}`; `*` matches any run of characters.',
                type: 'string',
              },
            }),
            exit: { description: 'The `kafka` cache client to use.', $ref: '#/definitions/name' },
            guarded: { $ref: '#/definitions/guarded' },
            with: { $ref: '#/definitions/http-kafka.with' },
          },
          additionalProperties: false,
        },
      },
    },
    additionalProperties: false,
  },
  definitions: {
    ...KAFKA_DEFINITIONS,
    'http-kafka.with': {
      description: 'What a matched request does.',
      type: 'object',
      required: ['capability', 'topic'],
      properties: {
        capability: {
          description: '`fetch` reads messages; `produce` writes the request body as a message.',
          enum: ['fetch', 'produce'],
        },
        topic: { description: 'Kafka topic.', type: 'string', minLength: 1 },
        filters: { $ref: '#/definitions/kafkaFilters' },
        merge: {
          description: 'Fetch: answer with all matching messages merged into one document.',
          type: 'object',
          required: ['content-type'],
          properties: {
            'content-type': {
              description: 'Content type of the merged response, such as `application/json`.',
              type: 'string',
            },
            patch: {
              description: 'JSON patch applied per message to build the merged document.',
              type: 'object',
              properties: {
                initial: { description: 'Initial document, such as `[]`.', type: 'string' },
                path: { description: 'JSON pointer each message is added at, such as `/-`.', type: 'string' },
              },
              additionalProperties: false,
            },
          },
          additionalProperties: false,
        },
        key: {
          description: 'Produce: message key, such as `${params.id}` or `${idempotencyKey}`.',
          type: 'string',
        },
        overrides: {
          description: 'Produce: message headers to set, by name.',
          $ref: '#/definitions/stringMap',
        },
        'reply-to': { description: 'Produce: topic to wait on for the correlated reply.', type: 'string' },
        async: {
          description: 'Produce: answer `202 Accepted` with a location to poll for the reply.',
          type: 'object',
          properties: {
            location: {
              description: 'Location path, such as `/items/${params.id};cid=${correlationId}`.',
              type: 'string',
            },
          },
          additionalProperties: false,
        },
        'correlation-id': {
          description:
            "Produce with reply-to: the Kafka header the request carries its correlation id under, when not the binding's `correlation.headers.correlation-id` (replies are matched by that one).",
          type: 'string',
        },
        'kafka-timeout': { $ref: '#/definitions/kafkaTimeout' },
        acks: {
          description: 'Produce: acknowledgement to wait for.',
          enum: ['none', 'leader_only', 'in_sync_replicas'],
        },
        'content-types': {
          description:
            "Content types answered as a Kafka record stored them in its `content-type` header: a fetch without `merge` answers with its message's, a request-reply route with its reply's. Each entry is `type/subtype`, where `*` stands for any run of characters (`application/*+json`); any other type, or a malformed one, is answered as `application/octet-stream`, so a producer cannot make a browser render what it wrote as a page of this origin. Defaults to `application/json`, `application/*+json`, `text/plain` and `application/octet-stream`. Listing `text/html`, `image/svg+xml`, XML types or `*/*` lets anyone who may produce to the topic run scripts on this origin.",
          type: 'array',
          items: { type: 'string', pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+$" },
        },
      },
      additionalProperties: false,
      allOf: [
        {
          if: { properties: { capability: { const: 'fetch' } }, required: ['capability'] },
          then: {
            properties: {
              key: false,
              overrides: false,
              'reply-to': false,
              async: false,
              'correlation-id': false,
              acks: false,
            },
          },
        },
        {
          if: { properties: { capability: { const: 'produce' } }, required: ['capability'] },
          then: { properties: { filters: false, merge: false } },
        },
      ],
    },
  },
};
