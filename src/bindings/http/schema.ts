import {
  anyOfConditions,
  COMMON_BINDING_PROPERTIES,
  conditionalRoutes,
  EXIT_REQUIRED_WITHOUT_ROUTES,
} from '../../config/core-schema.ts';
import type { BindingSchema, JsonSchema, ObjectSchemaFor } from '../../config/json-schema.ts';
import { NET_DEFINITIONS } from '../tcp/schema.ts';
import type { CorsJson } from './cors.ts';
import type { HttpServerOptionsJson } from './options.ts';

const HTTP_DEFINITIONS: { readonly [name: string]: JsonSchema } = {
  httpVersions: {
    description: 'HTTP versions to speak.',
    type: 'array',
    uniqueItems: true,
    items: { enum: ['http/1.1', 'h2'] },
  },
  credentialsTemplates: {
    type: 'object',
    minProperties: 1,
    additionalProperties: {
      type: 'string',
      pattern: '^[^{]*\\{credentials\\}[^{]*$',
      patternErrorMessage: 'must hold `{credentials}` once, where the token stands',
    },
  },
  httpOverrides: {
    description: 'Headers to set on every request, by name.',
    $ref: '#/definitions/stringMap',
  },
};

export const httpServerSchema: BindingSchema = {
  binding: {
    description: 'Serves HTTP on accepted connections and routes requests by their headers.',
    type: 'object',
    properties: {
      ...COMMON_BINDING_PROPERTIES,
      options: {
        description: 'HTTP server options.',
        type: 'object',
        properties: {
          versions: { $ref: '#/definitions/httpVersions' },
          requests: {
            description:
              "Request validation, in Zilla's shape: a request whose path and method match an entry (path templates as in routes, `{name}` one segment) must have one of its `content-type`s, and its body must fit its `content` model; else it is answered 400 before any route sees it. See docs/models.md.",
            type: 'array',
            items: {
              type: 'object',
              required: ['path'],
              properties: {
                path: { description: 'Path, or a path template.', type: 'string', pattern: '^/' },
                method: {
                  description: 'Method; absent: any.',
                  enum: ['GET', 'PUT', 'POST', 'DELETE', 'OPTIONS', 'HEAD', 'PATCH', 'TRACE'],
                },
                'content-type': {
                  description: 'Content types the request may have (parameters such as charset aside).',
                  type: 'array',
                  minItems: 1,
                  items: { type: 'string', minLength: 1 },
                },
                content: { description: 'Model the body must fit.', $ref: '#/definitions/model' },
              },
              additionalProperties: false,
              anyOf: [{ required: ['content-type'] }, { required: ['content'] }],
            },
          },
          'access-control': {
            description: 'Cross-origin resource sharing (CORS).',
            type: 'object',
            required: ['policy'],
            properties: {
              policy: {
                description:
                  '`same-origin` rejects cross-origin requests; `cross-origin` allows those described by `allow`.',
                enum: ['same-origin', 'cross-origin'],
              },
              allow: {
                description:
                  'What cross-origin requests may use. A list left out allows everything and is answered `*`; a list given is answered with what the request named (its origin, method, headers).',
                type: 'object',
                properties: {
                  origins: { description: 'Allowed origins.', $ref: '#/definitions/stringList' },
                  methods: { description: 'Allowed methods.', $ref: '#/definitions/stringList' },
                  headers: { description: 'Allowed request headers.', $ref: '#/definitions/stringList' },
                  credentials: {
                    description:
                      'Allow credentials (cookies, authorization); needs `origins`, without `*` or `null`.',
                    type: 'boolean',
                  },
                },
                additionalProperties: false,
                // Zilla reflects any origin when credentials come without a list; kgate refuses that.
                if: { properties: { credentials: { const: true } }, required: ['credentials'] },
                then: {
                  required: ['origins'],
                  properties: {
                    origins: {
                      type: 'array',
                      items: {
                        type: 'string',
                        pattern: '^(?!\\*$|null$)',
                        patternErrorMessage:
                          'must name one origin, such as "https://app.example": with credentials, "*" and "null" would let any site read responses as the user',
                      },
                    },
                  },
                },
              },
              'max-age': {
                description: 'Seconds a browser may cache a preflight response.',
                type: 'integer',
                minimum: 0,
              },
              expose: {
                description:
                  'Response headers scripts may read. Without it every header is exposed (`*`), or with credentials the ones kgate sends (`ETag`, `Location`, `Retry-After`, ...).',
                type: 'object',
                properties: {
                  headers: { description: 'Exposed response headers.', $ref: '#/definitions/stringList' },
                },
                additionalProperties: false,
              },
            },
            additionalProperties: false,
          } satisfies ObjectSchemaFor<CorsJson>,
          authorization: {
            description:
              "The guard that verifies requests' credentials (one, by name), and where credentials are: each entry a template in which `{credentials}` stands for the token. Routes then take a request only when their `guarded` scopes are granted.",
            type: 'object',
            minProperties: 1,
            maxProperties: 1,
            additionalProperties: {
              type: 'object',
              required: ['credentials'],
              properties: {
                credentials: {
                  description: 'Where a request carries its credentials; the first one present is used.',
                  type: 'object',
                  minProperties: 1,
                  properties: {
                    headers: {
                      description: 'Header name to template, such as `authorization: Bearer {credentials}`.',
                      $ref: '#/definitions/credentialsTemplates',
                    },
                    query: {
                      description:
                        'Query parameter name to template, such as `access_token: "{credentials}"`.',
                      $ref: '#/definitions/credentialsTemplates',
                    },
                    cookies: {
                      description: 'Cookie name to template, such as `access_token: "{credentials}"`.',
                      $ref: '#/definitions/credentialsTemplates',
                    },
                  },
                  additionalProperties: false,
                },
              },
              additionalProperties: false,
            },
          },
          overrides: { $ref: '#/definitions/httpOverrides' },
          timeouts: {
            description:
              'How long a client may take, in seconds. A request that passes one is answered 408 (when the client can still read it) and its connection closed.',
            type: 'object',
            properties: {
              headers: {
                description:
                  'Request line and headers, from the first byte of the request (default 60). Also bounds a new connection that sends nothing.',
                type: 'number',
                minimum: 0.001,
              },
              'keep-alive': {
                description:
                  'An idle connection between requests, or an HTTP/2 connection without a stream, is closed after this (default 5).',
                type: 'number',
                minimum: 0.001,
              },
              'body-idle': {
                description:
                  'A request body that sends nothing for this long while kgate reads it (default 30). Time kgate holds the body back itself, waiting for staging budget, does not count.',
                type: 'number',
                minimum: 0.001,
              },
              body: {
                description:
                  'A whole request body, counting only the time kgate waits for it. Default: 60 plus 1 per 16 KiB the body announces (or may have, when it announces no length), so a client sending at least 16 KiB/s never meets it.',
                type: 'number',
                minimum: 0.001,
              },
            },
            additionalProperties: false,
          },
          limits: {
            description: 'What one client connection may have in flight at once.',
            type: 'object',
            properties: {
              'pipelined-requests': {
                description:
                  'HTTP/1.1 requests received on one connection and not answered yet, the one being answered included (default 16). Answers are built one at a time, in order; a request past the limit is answered 503 with `Retry-After` and the connection closed after it.',
                type: 'integer',
                minimum: 1,
              },
              'concurrent-streams': {
                description:
                  'HTTP/2 streams open at once on one connection, announced as SETTINGS_MAX_CONCURRENT_STREAMS (default 100); a stream past it is refused by the HTTP/2 layer (REFUSED_STREAM) for the client to retry.',
                type: 'integer',
                minimum: 1,
              },
            },
            additionalProperties: false,
          },
        },
        additionalProperties: false,
      } satisfies ObjectSchemaFor<HttpServerOptionsJson>,
      routes: conditionalRoutes(
        anyOfConditions({
          headers: {
            description: 'Request headers that must all match; values may use `*`.',
            type: 'object',
            properties: {
              ':scheme': { description: '`http` or `https`.', type: 'string' },
              ':authority': {
                description: 'Host and port, such as `localhost:7114`.',
                type: 'string',
              },
              ':path': {
                description:
                  'Request path, such as `/items/*` or `/items/{id}` (`{name}` is one or more characters, `/` included); unless it ends with `*`, a query string may follow, as in Zilla.',
                type: 'string',
              },
              ':method': { description: 'Request method, such as `GET`.', type: 'string' },
            },
            additionalProperties: { type: 'string' },
          },
        }),
      ),
      exit: {
        description: 'Binding for requests no route matches. Required unless there are routes.',
        $ref: '#/definitions/name',
      },
    },
    additionalProperties: false,
    ...EXIT_REQUIRED_WITHOUT_ROUTES,
  },
  definitions: HTTP_DEFINITIONS,
};

/** Accepted so that Zilla files with an http client load; this build cannot run one. */
export const httpClientSchema: BindingSchema = {
  binding: {
    description: 'Sends HTTP requests over its exit.',
    type: 'object',
    properties: {
      ...COMMON_BINDING_PROPERTIES,
      options: {
        description: 'HTTP client options.',
        type: 'object',
        properties: {
          versions: { $ref: '#/definitions/httpVersions' },
          overrides: { $ref: '#/definitions/httpOverrides' },
        },
        additionalProperties: false,
      },
      routes: { $ref: '#/definitions/netRoutes' },
      exit: {
        description: 'The `tcp` or `tls` client that carries requests. Required unless there are routes.',
        $ref: '#/definitions/name',
      },
    },
    additionalProperties: false,
    ...EXIT_REQUIRED_WITHOUT_ROUTES,
  },
  definitions: { ...HTTP_DEFINITIONS, ...NET_DEFINITIONS },
};
