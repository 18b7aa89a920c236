import { anyOfConditions, conditionalRoutes } from '../../config/core-schema.ts';
import type { JsonSchema, ObjectSchemaFor } from '../../config/json-schema.ts';
import type { KafkaTopicJson } from './topic-options.ts';

/**
 * Schema definitions the kafka kinds share: per-topic settings, routes by topic, and the message
 * filters and waits for Kafka that the http-kafka and sse-kafka proxies hand to a cache_client.
 */
export const KAFKA_DEFINITIONS: { readonly [name: string]: JsonSchema } = {
  kafkaTopicName: { type: 'string', minLength: 1 },
  kafkaTopic: {
    type: 'object',
    required: ['name'],
    properties: {
      name: { description: 'Topic name.', $ref: '#/definitions/kafkaTopicName' },
      defaultOffset: {
        description:
          'Where a new reader starts when it gives no offset: `live` (only new messages) or `historical` (from the earliest retained message).',
        enum: ['live', 'historical'],
      },
      deltaType: {
        description:
          'Zilla delta encoding between successive values of a key. Accepted for compatibility; kgate always serves whole values.',
        enum: ['none', 'json_patch'],
      },
      key: {
        description:
          'Model of the message key: produced keys are validated and encoded by it, and with `view: json` readers see keys as JSON. See docs/models.md.',
        $ref: '#/definitions/model',
      },
      value: {
        description:
          'Model of the message value: produced values are validated (and with `view: json` encoded from JSON) by it, and with `view: json` readers see values as JSON, records that do not decode skipped. See docs/models.md.',
        $ref: '#/definitions/model',
      },
      transforms: {
        description:
          "Computed once per record when the cache_server ingests it: `extract-key` makes a field of the key or value the record's key in the cache, `extract-headers` adds headers from fields, so that filters on them cost what a key or header filter costs. A field is `${message.value.<field>}` or `${message.key.<field>}`, read from the part decoded by the topic's model (JSON text without one). Only on a cache_server.",
        type: 'array',
        minItems: 1,
        maxItems: 2,
        items: {
          type: 'object',
          minProperties: 1,
          maxProperties: 1,
          properties: {
            'extract-key': { $ref: '#/definitions/kafkaFieldPath' },
            'extract-headers': {
              type: 'object',
              minProperties: 1,
              propertyNames: {
                type: 'string',
                pattern: '^[a-zA-Z:]+[a-zA-Z0-9._\\-:]*$',
                patternErrorMessage: 'must be a header name',
              },
              additionalProperties: { $ref: '#/definitions/kafkaFieldPath' },
            },
          },
          additionalProperties: false,
        },
      },
    },
    additionalProperties: false,
  } satisfies ObjectSchemaFor<KafkaTopicJson>,
  kafkaFieldPath: {
    type: 'string',
    pattern: '^\\$\\{message\\.(key|value)\\.([A-Za-z_][A-Za-z0-9_]*)\\}$',
    patternErrorMessage: 'must be ${message.key.<field>} or ${message.value.<field>}',
  },
  kafkaTopics: {
    description: 'Per-topic settings.',
    type: 'array',
    items: { $ref: '#/definitions/kafkaTopic' },
  },
  kafkaFilter: {
    type: 'object',
    properties: {
      key: { description: 'Only messages with this key (after `${params.*}` substitution).', type: 'string' },
      headers: {
        description: 'Only messages carrying all of these header values.',
        $ref: '#/definitions/stringMap',
      },
    },
    additionalProperties: false,
  },
  kafkaFilters: {
    description: 'Message filters; a message passes if it matches any filter.',
    type: 'array',
    items: { $ref: '#/definitions/kafkaFilter' },
  },
  kafkaTimeout: {
    description:
      "Seconds a request (or an event stream, before it starts) waits for what it needs from Kafka: the topic's metadata and config, a partition's leader, a producer id, and for a fetch the cache catching up with the topic. Past it the request is answered 503 saying why (504 for the catch-up; an `error` event for a stream), and what it waited for goes on being asked for. Each wait is bounded on its own. Default 30.",
    type: 'number',
    minimum: 0.001,
  },
  kafkaRoutes: conditionalRoutes(
    anyOfConditions({
      topic: {
        description: 'Topic name; `*` matches any run of characters and `?` a single one.',
        type: 'string',
      },
    }),
  ),
};
