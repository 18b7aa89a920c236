import { COMMON_BINDING_PROPERTIES } from '../../config/core-schema.ts';
import type { BindingSchema } from '../../config/json-schema.ts';
import { KAFKA_DEFINITIONS } from '../kafka/schema.ts';
import { PATH_DEFINITIONS } from '../path-conditions.ts';

export const sseKafkaProxySchema: BindingSchema = {
  binding: {
    description: 'Streams Kafka messages from the cache as server-sent events.',
    type: 'object',
    required: ['routes'],
    properties: {
      ...COMMON_BINDING_PROPERTIES,
      options: { description: 'No options yet.', type: 'object', additionalProperties: false },
      routes: {
        description: 'Stream mappings, tried in order; the first match wins.',
        type: 'array',
        minItems: 1,
        items: {
          type: 'object',
          required: ['exit', 'with'],
          properties: {
            when: { $ref: '#/definitions/pathConditions' },
            exit: { description: 'The `kafka` cache client to use.', $ref: '#/definitions/name' },
            guarded: { $ref: '#/definitions/guarded' },
            with: {
              description: 'What a matched stream carries.',
              type: 'object',
              required: ['topic'],
              properties: {
                topic: { description: 'Kafka topic.', type: 'string', minLength: 1 },
                filters: { $ref: '#/definitions/kafkaFilters' },
                'kafka-timeout': { $ref: '#/definitions/kafkaTimeout' },
                event: {
                  description: 'Event fields.',
                  type: 'object',
                  properties: {
                    id: {
                      description:
                        'Event id template: `${etag}` (default) or `["${base64(key)}","${etag}"]`.',
                      type: 'string',
                    },
                  },
                  additionalProperties: false,
                },
              },
              additionalProperties: false,
            },
          },
          additionalProperties: false,
        },
      },
    },
    additionalProperties: false,
  },
  definitions: { ...KAFKA_DEFINITIONS, ...PATH_DEFINITIONS },
};
