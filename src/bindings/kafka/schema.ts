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
        description: 'Zilla message transforms. Accepted for compatibility and not applied.',
        type: 'array',
      },
    },
    additionalProperties: false,
  } satisfies ObjectSchemaFor<KafkaTopicJson>,
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
