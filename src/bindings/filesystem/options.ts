import { dirname, isAbsolute, resolve } from 'node:path';

/** A filesystem server's options as the schema admits them. */
export interface FilesystemServerOptionsJson {
  readonly location: string;
}

export interface FilesystemServerOptions {
  /** The directory served, absolute. */
  readonly location: string;
}

/**
 * A filesystem server's options that passed its schema. A relative location is taken from the
 * directory of the config file, so that a config serves the same files whatever directory kgate
 * was started in; without a file (a config built in code), from the working directory.
 */
export function filesystemServerOptions(
  options: unknown,
  configFile: string | undefined,
): FilesystemServerOptions {
  const { location } = options as FilesystemServerOptionsJson;
  const base = configFile === undefined ? process.cwd() : dirname(resolve(configFile));
  return { location: isAbsolute(location) ? location : resolve(base, location) };
}
