import { COMMON_BINDING_PROPERTIES } from '../../config/core-schema.ts';
import type { BindingSchema, ObjectSchemaFor } from '../../config/json-schema.ts';
import type { FilesystemServerOptionsJson } from './options.ts';

export const filesystemServerSchema: BindingSchema = {
  binding: {
    description:
      'A directory of files that `http-filesystem` proxies serve. Paths that would leave the directory (`..`, symbolic links pointing outside) are treated as missing, and so, by default, are dotfiles. The location may not contain the config file or the cache directory (`validate` and `start` refuse it).',
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
              'The directory to serve, relative to the directory of the config file unless absolute. A directory missing at start is logged and served as empty until it appears. It may neither contain the config file or the cache directory nor lie inside the cache directory.',
            type: 'string',
            minLength: 1,
          },
          dotfiles: {
            description:
              'Paths with a segment starting with `.` (`.env`, `.git/config`, `.well-known/...`), also where a symbolic link leads: `ignore` answers them as missing, `allow` serves them. Defaults to `ignore`.',
            enum: ['ignore', 'allow'],
          },
        },
        additionalProperties: false,
      } satisfies ObjectSchemaFor<FilesystemServerOptionsJson>,
    },
    additionalProperties: false,
  },
};
