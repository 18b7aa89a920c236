import { COMMON_BINDING_PROPERTIES } from '../../config/core-schema.ts';
import type { BindingSchema } from '../../config/json-schema.ts';

export const echoServerSchema: BindingSchema = {
  binding: {
    description:
      "Sends every byte a stream brings back on it, as Zilla's `echo` server: after a `tcp` or `tls` server it echoes the connection, after an `http` server it answers each request `200` with the request's headers and body, after a `fan` server it sends what any client wrote to all of them. It has no options, routes or exit.",
    type: 'object',
    properties: {
      ...COMMON_BINDING_PROPERTIES,
    },
    additionalProperties: false,
  },
};
