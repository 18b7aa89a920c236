import { COMMON_BINDING_PROPERTIES } from '../../../config/core-schema.ts';
import type { BindingSchema, ObjectSchemaFor } from '../../../config/json-schema.ts';
import { KAFKA_DEFINITIONS } from '../schema.ts';
import type { CacheServerOptionsJson } from './options.ts';

export const cacheServerSchema: BindingSchema = {
  binding: {
    description:
      'Keeps the cache filled: fetches topics from Kafka through its exit and stores them persistently.',
    type: 'object',
    required: ['exit'],
    properties: {
      ...COMMON_BINDING_PROPERTIES,
      options: {
        description: 'Cache server options.',
        type: 'object',
        properties: {
          bootstrap: {
            description: 'Topics to start caching at startup, before any reader asks for them.',
            type: 'array',
            items: { $ref: '#/definitions/kafkaTopicName' },
          },
          topics: { $ref: '#/definitions/kafkaTopics' },
        },
        additionalProperties: false,
      } satisfies ObjectSchemaFor<CacheServerOptionsJson>,
      routes: { $ref: '#/definitions/kafkaRoutes' },
      exit: { description: 'The `kafka` client to fetch through.', $ref: '#/definitions/name' },
    },
    additionalProperties: false,
  },
  definitions: KAFKA_DEFINITIONS,
};
