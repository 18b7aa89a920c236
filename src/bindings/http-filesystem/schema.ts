import { COMMON_BINDING_PROPERTIES } from '../../config/core-schema.ts';
import type { BindingSchema } from '../../config/json-schema.ts';
import { PATH_DEFINITIONS } from '../path-conditions.ts';

export const httpFilesystemProxySchema: BindingSchema = {
  binding: {
    description:
      'Serves files of a `filesystem` server binding to HTTP GET and HEAD requests, with a content type by file extension, an ETag (answering 304 to a matching `If-None-Match`) and `index.html` for a path ending in `/`.',
    type: 'object',
    required: ['routes'],
    properties: {
      ...COMMON_BINDING_PROPERTIES,
      options: { description: 'No options yet.', type: 'object', additionalProperties: false },
      routes: {
        description:
          'Path mappings, tried in order; the first match wins. A request no route matches is answered 404.',
        type: 'array',
        minItems: 1,
        items: {
          type: 'object',
          required: ['exit'],
          properties: {
            when: { $ref: '#/definitions/pathConditions' },
            exit: {
              description: 'The `filesystem` server binding to read from.',
              $ref: '#/definitions/name',
            },
            guarded: { $ref: '#/definitions/guarded' },
            with: {
              description: 'Which file a matched request reads.',
              type: 'object',
              properties: {
                path: {
                  description:
                    "File path relative to the filesystem's location, a template over `${params.name}`; a path that is empty or ends in `/` reads its `index.html`. Defaults to the request path. A parameter, or a segment of the request path, that decodes to a separator (`%2f`, `%5c`), NUL, `.` or `..` is answered 404: an escape never reaches a file that plain slashes would not.",
                  type: 'string',
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
  definitions: PATH_DEFINITIONS,
};
