import {
  anyOfConditions,
  COMMON_BINDING_PROPERTIES,
  conditionalRoutes,
  EXIT_REQUIRED_WITHOUT_ROUTES,
} from '../../config/core-schema.ts';
import type { BindingSchema, JsonSchema, ObjectSchemaFor } from '../../config/json-schema.ts';
import type { TcpClientOptionsJson, TcpServerOptionsJson } from './options.ts';

/** Routes by remote address and local port, shared with the http client's schema. */
export const NET_DEFINITIONS: { readonly [name: string]: JsonSchema } = {
  netRoutes: conditionalRoutes({ $ref: '#/definitions/netConditions' }),
  netConditions: anyOfConditions({
    cidr: {
      description: 'Remote address range, such as `10.0.0.0/8`.',
      type: 'string',
      pattern: '^[0-9a-fA-F:.]+/[0-9]{1,3}$',
      patternErrorMessage: 'must be an address range like "10.0.0.0/8"',
    },
    authority: {
      description: 'Host name the client asked for; `*` matches any run of characters.',
      type: 'string',
    },
    port: { description: 'Local port.', $ref: '#/definitions/port' },
  }),
};

const NODELAY = { description: "Disable Nagle's algorithm. Defaults to `true`.", type: 'boolean' } as const;
const KEEPALIVE = { description: 'Enable TCP keep-alive.', type: 'boolean' } as const;

export const tcpServerSchema: BindingSchema = {
  binding: {
    description: 'Listens for TCP connections.',
    type: 'object',
    required: ['options'],
    properties: {
      ...COMMON_BINDING_PROPERTIES,
      options: {
        description: 'Listening address.',
        type: 'object',
        required: ['port'],
        properties: {
          host: { description: 'Address to listen on. Defaults to `0.0.0.0`.', type: 'string' },
          port: { description: 'Port(s) to listen on.', $ref: '#/definitions/port' },
          backlog: { description: 'Maximum queue of pending connections.', type: 'integer', minimum: 1 },
          nodelay: NODELAY,
          keepalive: KEEPALIVE,
        },
        additionalProperties: false,
      } satisfies ObjectSchemaFor<TcpServerOptionsJson>,
      routes: { $ref: '#/definitions/netRoutes' },
      exit: {
        description: 'Binding for connections no route matches. Required unless there are routes.',
        $ref: '#/definitions/name',
      },
    },
    additionalProperties: false,
    ...EXIT_REQUIRED_WITHOUT_ROUTES,
  },
  definitions: NET_DEFINITIONS,
};

export const tcpClientSchema: BindingSchema = {
  binding: {
    description: 'Opens outbound TCP connections. The end of a chain.',
    type: 'object',
    properties: {
      ...COMMON_BINDING_PROPERTIES,
      options: {
        description: 'Remote address; when omitted, the address asked for by the binding in front is used.',
        type: 'object',
        properties: {
          host: { description: 'Remote host name or address.', type: 'string' },
          port: { description: 'Remote port.', $ref: '#/definitions/port' },
          nodelay: NODELAY,
          keepalive: KEEPALIVE,
        },
        additionalProperties: false,
      } satisfies ObjectSchemaFor<TcpClientOptionsJson>,
      routes: {
        description:
          'Zilla restricts outbound destinations with these. Accepted for compatibility and ignored, with a warning.',
        type: 'array',
        items: {
          type: 'object',
          properties: {
            when: { $ref: '#/definitions/netConditions' },
            guarded: { $ref: '#/definitions/guarded' },
          },
          additionalProperties: false,
        },
      },
    },
    additionalProperties: false,
  },
  definitions: NET_DEFINITIONS,
};
