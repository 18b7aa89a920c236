import { COMMON_BINDING_PROPERTIES } from '../../config/core-schema.ts';
import type { BindingSchema, ObjectSchemaFor } from '../../config/json-schema.ts';
import type { FilesystemServerOptionsJson } from './options.ts';

export const filesystemServerSchema: BindingSchema = {
  binding: {
    description:
      'A directory of files that `http-filesystem` proxies serve. Paths that would leave the directory (`..`, symbolic links pointing outside) are treated as missing.',
    type: 'object',
    required: ['options'],
    properties: {
      ...COMMON_BINDING_PROPERTIES,
      options: {
        description: 'Filesystem options.',
        type: 'object',
        required: ['location'],
        properties: {
          location: {
            description:
              'The directory to serve, relative to the directory of the config file unless absolute. A directory missing at start is logged and served as empty until it appears.',
            type: 'string',
            minLength: 1,
          },
        },
        additionalProperties: false,
      } satisfies ObjectSchemaFor<FilesystemServerOptionsJson>,
    },
    additionalProperties: false,
  },
};
