import {
  COMMON_BINDING_PROPERTIES,
  conditionalRoutes,
  EXIT_REQUIRED_WITHOUT_ROUTES,
} from '../../config/core-schema.ts';
import type { BindingSchema, ObjectSchemaFor } from '../../config/json-schema.ts';
import { PATH_DEFINITIONS } from '../path-conditions.ts';
import type { SseServerOptionsJson } from './options.ts';

export const sseServerSchema: BindingSchema = {
  binding: {
    description: 'Serves server-sent events (`text/event-stream`) on HTTP requests.',
    type: 'object',
    properties: {
      ...COMMON_BINDING_PROPERTIES,
      options: {
        description: 'SSE server options.',
        type: 'object',
        properties: {
          retry: {
            description: 'Reconnect delay sent to clients, in milliseconds.',
            type: 'integer',
            minimum: 0,
          },
        },
        additionalProperties: false,
      } satisfies ObjectSchemaFor<SseServerOptionsJson>,
      routes: conditionalRoutes({ $ref: '#/definitions/pathConditions' }),
      exit: {
        description: 'Binding for event streams no route matches. Required unless there are routes.',
        $ref: '#/definitions/name',
      },
    },
    additionalProperties: false,
    ...EXIT_REQUIRED_WITHOUT_ROUTES,
  },
  definitions: PATH_DEFINITIONS,
};
