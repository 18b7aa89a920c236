import { realpath, stat } from 'node:fs/promises';
import { resolve, sep } from 'node:path';
import type { Logger } from 'pino';
import type { BindingConfig } from '../../config/index.ts';
import type { Binding, BindingContext, BindingFactory } from '../../engine/binding.ts';
import { filesystemServerOptions } from './options.ts';

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
   * The regular file at `relative` (a `/`-separated path, leading slashes ignored), or undefined
   * when there is none or the path would lead outside the location.
   */
  findFile(relative: string): Promise<FileEntry | undefined>;
}

export function isFileSource(binding: Binding): binding is Binding & FileSource {
  return typeof (binding as Partial<FileSource>).findFile === 'function';
}

function inside(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
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
  readonly #log: Logger;
  #started = false;

  constructor(context: BindingContext) {
    this.config = context.config;
    this.name = context.config.name;
    this.#log = context.logger;
    this.#location = filesystemServerOptions(context.config.options, context.configFile).location;
  }

  /** The directory served, as configured and resolved to an absolute path. */
  get location(): string {
    return this.#location;
  }

  async start(_signal: AbortSignal): Promise<void> {
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

  async findFile(relative: string): Promise<FileEntry | undefined> {
    if (!this.#started || relative.includes('\0')) return undefined;
    let root: string;
    try {
      // Resolved per request: the location itself may be a link that is later repointed.
      root = await realpath(this.#location);
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
    const candidate = resolve(root, relative.replace(/^\/+/, ''));
    if (!inside(root, candidate)) return undefined;
    try {
      // A link inside the location may point anywhere; what counts is where it leads.
      const real = await realpath(candidate);
      if (!inside(root, real)) return undefined;
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
