import {
  anyOfConditions,
  COMMON_BINDING_PROPERTIES,
  conditionalRoutes,
  EXIT_REQUIRED_WITHOUT_ROUTES,
} from '../../config/core-schema.ts';
import type { BindingSchema, JsonSchema, ObjectSchemaFor } from '../../config/json-schema.ts';
import type { TlsOptionsJson } from './options.ts';

/** Options and routes the tls server and client have in common. */
const TLS_DEFINITIONS: { readonly [name: string]: JsonSchema } = {
  tlsOptions: {
    type: 'object',
    properties: {
      version: { description: 'Highest TLS protocol version, such as `TLSv1.3`.', type: 'string' },
      keys: {
        description:
          "Aliases of keys in the binding's `vault` (its `keys` store); a server serves every key of that store when it names none. Without a `vault`, each entry is a PEM file holding a key and its certificate chain.",
        $ref: '#/definitions/stringList',
      },
      trust: {
        description:
          "Aliases of certificates to trust in the binding's `vault` (its `trust` store): a server asks clients for certificates they issued, a client accepts brokers' certificates they issued. Without a `vault`, each entry is a PEM file of certificate authorities.",
        $ref: '#/definitions/stringList',
      },
      signers: {
        description:
          "Aliases of signer certificates in the binding's `vault` (its `signers` store): the keys of its `keys` store that they issued are served (a server) or presented (a client). Needs a `vault`.",
        $ref: '#/definitions/stringList',
      },
      trustcacerts: {
        description: "Also trust the platform's default certificate authorities.",
        type: 'boolean',
      },
      sni: {
        description:
          'Server names: for a server, the names it answers to; for a client, the name it asks for.',
        $ref: '#/definitions/stringList',
      },
      alpn: {
        description: 'Application protocols to negotiate, such as `h2` and `http/1.1`.',
        $ref: '#/definitions/stringList',
      },
      mutual: {
        description: 'Client certificate policy: `required`, `requested` or `none`.',
        enum: ['required', 'requested', 'none'],
      },
      key: { description: 'Path of a PEM file holding the private key.', type: 'string' },
      cert: { description: 'Path of a PEM file holding the certificate chain.', type: 'string' },
      ca: { description: 'Path of a PEM file holding certificate authorities to trust.', type: 'string' },
    },
    additionalProperties: false,
  } satisfies ObjectSchemaFor<TlsOptionsJson>,
  tlsRoutes: conditionalRoutes(
    anyOfConditions({
      authority: {
        description: 'Server name (SNI); `*` matches any run of characters.',
        type: 'string',
      },
      alpn: { description: 'Negotiated application protocol.', type: 'string' },
      port: { description: 'Local port.', $ref: '#/definitions/port' },
    }),
  ),
};

export const tlsServerSchema: BindingSchema = {
  binding: {
    description: 'Terminates TLS on accepted connections.',
    type: 'object',
    properties: {
      ...COMMON_BINDING_PROPERTIES,
      options: { description: 'TLS server options.', $ref: '#/definitions/tlsOptions' },
      routes: { $ref: '#/definitions/tlsRoutes' },
      exit: {
        description: 'Binding for decrypted streams no route matches. Required unless there are routes.',
        $ref: '#/definitions/name',
      },
    },
    additionalProperties: false,
    ...EXIT_REQUIRED_WITHOUT_ROUTES,
  },
  definitions: TLS_DEFINITIONS,
};

export const tlsClientSchema: BindingSchema = {
  binding: {
    description: 'Encrypts outbound connections with TLS.',
    type: 'object',
    properties: {
      ...COMMON_BINDING_PROPERTIES,
      options: { description: 'TLS client options.', $ref: '#/definitions/tlsOptions' },
      routes: { $ref: '#/definitions/tlsRoutes' },
      exit: {
        description:
          'The `tcp` client that carries the encrypted connection. Required unless there are routes.',
        $ref: '#/definitions/name',
      },
    },
    additionalProperties: false,
    ...EXIT_REQUIRED_WITHOUT_ROUTES,
  },
  definitions: TLS_DEFINITIONS,
};
