import { realpath, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type { Logger } from 'pino';
import { ownFilesProblem, type BindingConfig, type OwnFiles } from '../../config/index.ts';
import type { Binding, BindingContext, BindingFactory } from '../../engine/binding.ts';
import { filesystemServerOptions, type DotfilesPolicy, type FilesystemServerOptions } from './options.ts';

/** A regular file found under a filesystem binding's location. */
export interface FileEntry {
  /** Absolute path with every symbolic link resolved; always inside the location. */
  readonly path: string;
  readonly size: number;
  readonly mtime: Date;
  /** Changes whenever the file is replaced or rewritten, for ETags. */
  readonly version: string;
}

/** What an `http-filesystem proxy` needs from its exit. */
export interface FileSource {
  /**
   * The regular file at `path` (a `/`-separated path, leading slashes ignored), or undefined
   * when there is none, the path would lead outside the location, or it names a dotfile the
   * binding does not serve.
   */
  findFile(path: string): Promise<FileEntry | undefined>;
}

export function isFileSource(binding: Binding): binding is Binding & FileSource {
  return typeof (binding as Partial<FileSource>).findFile === 'function';
}

function inside(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}

/**
 * The segments of a file path, or undefined when one of them could name anything but a file
 * below the location: `.` and `..`, a backslash (a separator on Windows, and never part of a
 * file name a URL should reach), NUL, and a dotfile unless they are allowed. Dotfiles are
 * refused by default because what starts with `.` is, by convention, not meant to be published:
 * `.env`, `.git/`, `.npmrc`, and kgate's own `.kgate/` cache.
 */
export function fileSegments(path: string, dotfiles: DotfilesPolicy): string[] | undefined {
  const segments = path.split('/').filter((segment) => segment !== '');
  for (const segment of segments) {
    if (segment === '.' || segment === '..' || segment.includes('\\') || segment.includes('\0'))
      return undefined;
    if (dotfiles === 'ignore' && segment.startsWith('.')) return undefined;
  }
  return segments;
}

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP' || code === 'ENAMETOOLONG';
}

/** The `filesystem server` binding: a directory whose files other bindings read, never outside it. */
export class FilesystemServerBinding implements Binding, FileSource {
  readonly name: string;
  readonly config: BindingConfig;
  readonly #location: string;
  readonly #options: FilesystemServerOptions;
  readonly #own: OwnFiles;
  readonly #log: Logger;
  #started = false;

  constructor(context: BindingContext) {
    this.config = context.config;
    this.name = context.config.name;
    this.#log = context.logger;
    this.#options = filesystemServerOptions(context.config.options, context.configFile);
    this.#location = this.#options.location;
    this.#own = {
      ...(context.configFile === undefined ? {} : { configFile: context.configFile }),
      ...(context.cacheDir === undefined ? {} : { cacheDir: context.cacheDir }),
    };
  }

  /** The directory served, as configured and resolved to an absolute path. */
  get location(): string {
    return this.#location;
  }

  async start(_signal: AbortSignal): Promise<void> {
    // The loader checked the cache directory a plain `kgate start` would use; this is the one
    // this process was given (`--cache-dir`), which only the running engine knows.
    const exposed = ownFilesProblem(this.#location, this.#own);
    if (exposed !== undefined) throw new Error(exposed);
    this.#started = true;
    let info;
    try {
      info = await stat(this.#location);
    } catch (error) {
      if (!isMissing(error)) throw error;
      // A directory created later (a build writing it, say) is served from then on.
      this.#log.warn(
        { location: this.#location },
        'location does not exist; its files are answered as missing',
      );
      return;
    }
    if (!info.isDirectory()) throw new Error(`location ${this.#location} is not a directory`);
  }

  async stop(_signal: AbortSignal): Promise<void> {
    this.#started = false;
  }

  async findFile(path: string): Promise<FileEntry | undefined> {
    if (!this.#started) return undefined;
    const segments = fileSegments(path, this.#options.dotfiles);
    if (segments === undefined) return undefined;
    let root: string;
    try {
      // Resolved per request: the location itself may be a link that is later repointed.
      root = await realpath(this.#location);
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
    const candidate = join(root, ...segments);
    try {
      // A link inside the location may point anywhere; what counts is where it leads, also for
      // dotfiles: `notes.txt -> .env` would otherwise publish what `/.env` does not.
      const real = await realpath(candidate);
      if (!inside(root, real)) return undefined;
      if (fileSegments(relative(root, real).split(sep).join('/'), this.#options.dotfiles) === undefined)
        return undefined;
      const info = await stat(real, { bigint: true });
      if (!info.isFile()) return undefined;
      return {
        path: real,
        size: Number(info.size),
        mtime: info.mtime,
        version: `${info.ino.toString(36)}-${info.size.toString(36)}-${info.mtimeNs.toString(36)}`,
      };
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }
}

export const createFilesystemServerBinding: BindingFactory = (context) =>
  new FilesystemServerBinding(context);
