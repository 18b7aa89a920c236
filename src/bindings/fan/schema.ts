import { COMMON_BINDING_PROPERTIES } from '../../config/core-schema.ts';
import type { BindingSchema } from '../../config/json-schema.ts';

export const fanServerSchema: BindingSchema = {
  binding: {
    description:
      "Joins every client connection into one stream to its exit and sends what comes back to every client, as Zilla's `fan` server: followed by an `echo` server, every byte one client sends goes to all connected clients. A client that does not read what it is sent (1 MiB queued) is closed rather than holding up the others.",
    type: 'object',
    required: ['exit'],
    properties: {
      ...COMMON_BINDING_PROPERTIES,
      exit: {
        description: 'The binding the joined stream goes to, such as an `echo` server.',
        $ref: '#/definitions/name',
      },
    },
    additionalProperties: false,
  },
};
