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
          metadata: {
            description:
              'How soon the cache sees a topic change under it: partitions added, the topic deleted, or deleted and created again.',
            type: 'object',
            properties: {
              refreshMs: {
                description:
                  'How often the metadata of each followed topic is asked for (default 5000). A fetch error naming the topic asks at once as well.',
                type: 'integer',
                minimum: 100,
              },
              maxAgeMs: {
                description:
                  'A request for a topic (a GET, an event stream, a produce) whose metadata was last asked for longer ago than this asks again before it is answered (default 1000), so that a deleted topic is answered 404 rather than from the cache. Concurrent requests share one Metadata request.',
                type: 'integer',
                minimum: 0,
              },
              waitMs: {
                description:
                  'How long a request waits for that answer (default 2000). Past it, with a broker not answering, the request is served from what the cache knows, and later ones do not wait again until an answer comes.',
                type: 'integer',
                minimum: 0,
              },
            },
            additionalProperties: false,
          },
          limits: {
            description: 'Bounds on what requests can make the cache do.',
            type: 'object',
            properties: {
              'requested-topics': {
                description:
                  'Topics requests may make the cache follow at once (default 1000; bootstrap topics do not count). A route whose topic is made of path parameters lets a client name any topic: past the bound, the least recently used topic no request holds is let go, and with every one in use a request for another is answered 503 `KGATE_TOPIC_LIMIT`.',
                type: 'integer',
                minimum: 1,
              },
            },
            additionalProperties: false,
          },
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
