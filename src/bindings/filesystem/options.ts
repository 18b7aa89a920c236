import { resolveBesideConfig } from '../../config/index.ts';

/** What a filesystem server does with a path that has a segment starting with `.`. */
export type DotfilesPolicy = 'ignore' | 'allow';

/** A filesystem server's options as the schema admits them. */
export interface FilesystemServerOptionsJson {
  readonly location: string;
  readonly dotfiles?: DotfilesPolicy;
}

export interface FilesystemServerOptions {
  /** The directory served, absolute. */
  readonly location: string;
  /** `ignore`: such paths are answered as missing; `allow`: served like any other. */
  readonly dotfiles: DotfilesPolicy;
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
  const { location, dotfiles } = options as FilesystemServerOptionsJson;
  return { location: resolveBesideConfig(location, configFile), dotfiles: dotfiles ?? 'ignore' };
}
