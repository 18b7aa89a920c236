import { existsSync, realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { pointerOf } from './source.ts';

/**
 * kgate's own files, which a static-file location must never contain: the config file (it may
 * hold credentials, and names every topic and broker) and the cache directory (the LMDB files
 * hold every cached topic, including those no route exposes). Checked when a config file is
 * loaded, with the cache directory `kgate start` would use given the same environment, and again
 * when a filesystem binding starts, with the cache directory it actually got (`--cache-dir`).
 */

/** The cache directory `kgate start` uses without `--cache-dir`: KGATE_CACHE_DIR, else `.kgate/cache` beside the config. */
export function defaultCacheDir(configFile: string, env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env['KGATE_CACHE_DIR'];
  if (fromEnv !== undefined && fromEnv !== '') return resolve(fromEnv);
  return join(dirname(resolve(configFile)), '.kgate', 'cache');
}

/**
 * A path relative to the directory of the config file unless absolute, so that a config means the
 * same files whatever directory kgate was started in; without a file, relative to the working
 * directory.
 */
export function resolveBesideConfig(path: string, configFile: string | undefined): string {
  const base = configFile === undefined ? process.cwd() : dirname(resolve(configFile));
  return isAbsolute(path) ? path : resolve(base, path);
}

/**
 * The path with every symbolic link resolved, as far as it exists: a location or cache directory
 * not created yet is compared by its nearest existing ancestor's real path plus the rest, so a
 * link anywhere above it cannot hide an overlap.
 */
export function realPathOf(path: string): string {
  const absolute = resolve(path);
  const missing: string[] = [];
  let current = absolute;
  for (;;) {
    try {
      return join(realpathSync.native(current), ...missing.reverse());
    } catch {
      const parent = dirname(current);
      if (parent === current) return absolute;
      missing.push(basename(current));
      current = parent;
    }
  }
}

/** Whether `path` is `dir` or lies under it; both absolute and normalized. */
export function isWithin(dir: string, path: string): boolean {
  const rest = relative(dir, path);
  return rest === '' || (rest !== '..' && !rest.startsWith(`..${sep}`) && !isAbsolute(rest));
}

export interface OwnFiles {
  /** The config file the bindings came from. */
  readonly configFile?: string;
  /** The directory under which the cache_server bindings keep their stores. */
  readonly cacheDir?: string;
}

/**
 * Why a static-file location would publish one of kgate's own files, or undefined when it would
 * not. The location's own value is left out of the message: it may come from `${{env.NAME}}`, and
 * the diagnostic already points at it.
 */
export function ownFilesProblem(location: string, own: OwnFiles): string | undefined {
  const served = realPathOf(location);
  // A config built in code names a file only to resolve relative paths; one not on disk leaks nothing.
  if (own.configFile !== undefined && existsSync(own.configFile)) {
    const config = realPathOf(own.configFile);
    if (isWithin(served, config))
      return `the location contains kgate's config file ${config}; serve a directory that holds only the files to publish`;
  }
  if (own.cacheDir !== undefined) {
    const cache = realPathOf(own.cacheDir);
    if (isWithin(served, cache))
      return (
        `the location contains kgate's cache directory ${cache}, whose files hold every cached topic; ` +
        'serve a directory that holds only the files to publish, or move the cache with --cache-dir'
      );
    if (isWithin(cache, served))
      return `the location is inside kgate's cache directory ${cache}; serve a directory of its own`;
  }
  return undefined;
}

export interface LocationProblem {
  /** JSON pointer of the `location` option. */
  readonly pointer: string;
  readonly message: string;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Filesystem server bindings whose location holds the config file or the cache directory that
 * `kgate start` would use with this environment. Run on a config that passed its schema.
 */
export function checkServedLocations(
  bindings: unknown,
  configFile: string,
  env: NodeJS.ProcessEnv,
): LocationProblem[] {
  if (!isObject(bindings)) return [];
  const own: OwnFiles = { configFile, cacheDir: defaultCacheDir(configFile, env) };
  const problems: LocationProblem[] = [];
  for (const [name, binding] of Object.entries(bindings)) {
    if (!isObject(binding) || binding['type'] !== 'filesystem' || binding['kind'] !== 'server') continue;
    // The filesystem schema requires a string location; anything else failed validation already.
    const { location } = isObject(binding['options']) ? binding['options'] : {};
    if (typeof location !== 'string') continue;
    const message = ownFilesProblem(resolveBesideConfig(location, configFile), own);
    if (message !== undefined)
      problems.push({ pointer: pointerOf(['bindings', name, 'options', 'location']), message });
  }
  return problems;
}
