import type { JsonSchema } from '../config/json-schema.ts';

/** The `when` of bindings routing HTTP requests by path: sse server, sse-kafka and http-filesystem proxies. */
export const PATH_DEFINITIONS: { readonly [name: string]: JsonSchema } = {
  pathConditions: {
    description: 'Conditions; the route matches if any of them does.',
    type: 'array',
    items: {
      type: 'object',
      properties: {
        path: {
          description:
            'Request path; `{name}` captures one path segment as `${params.name}`, `*` matches any run of characters.',
          type: 'string',
        },
      },
      additionalProperties: false,
    },
  },
};
