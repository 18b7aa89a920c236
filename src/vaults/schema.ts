import type { JsonSchema, JsonSchemaObject } from '../config/json-schema.ts';
import { STORE_TYPES } from './vault.ts';

function store(title: string): JsonSchemaObject {
  return {
    description: title,
    type: 'object',
    required: ['store'],
    properties: {
      store: {
        description: 'Path of the store file, relative to the config file unless absolute.',
        type: 'string',
        minLength: 1,
      },
      type: {
        description:
          'Store format: `pkcs12` (default), `pem` (keys and certificates named by `friendlyName:` lines, as `openssl pkcs12 -nodes` writes them), or `jks` for a file that is PKCS#12 inside, as keytool writes by default since Java 9 (a store in the old JKS format is refused: convert it with `keytool -importkeystore -deststoretype pkcs12`).',
        enum: [...STORE_TYPES, ...STORE_TYPES.map((type) => type.toUpperCase())],
      },
      password: {
        description:
          'Password of the store (PKCS#12), or of its encrypted keys (PEM); use `${{env.NAME}}` rather than writing it in the file.',
        type: 'string',
      },
      entries: {
        description: 'Aliases the store offers; absent: all of its entries.',
        $ref: '#/definitions/stringList',
      },
    },
    additionalProperties: false,
  };
}

/** A vault under `vaults`: kgate has the `filesystem` type of Zilla's. */
export const VAULT_DEFINITIONS: { readonly [name: string]: JsonSchema } = {
  vaultDefinition: {
    type: 'object',
    required: ['type'],
    properties: {
      type: {
        description: 'Vault type; kgate has `filesystem`: key stores read from files.',
        enum: ['filesystem'],
      },
      options: {
        description: 'The stores of the vault, each optional.',
        type: 'object',
        properties: {
          keys: store(
            'Private keys with their certificate chains, by alias: what tls bindings name in `keys`.',
          ),
          trust: store('Certificates to trust, by alias: what tls bindings name in `trust`.'),
          signers: store(
            'Certificates of signers, by alias: what tls bindings name in `signers`, to use the keys they issued.',
          ),
        },
        additionalProperties: false,
      },
    },
    additionalProperties: false,
  },
};
