import { createReadStream } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import type { BindingConfig, RouteConfig } from '../../config/index.ts';
import type { Binding, BindingContext, BindingFactory } from '../../engine/binding.ts';
import { isFileSource, type FileEntry, type FileSource } from '../filesystem/server.ts';
import { capturedParams, checkTemplate, expand, paramsLookup } from '../proxies/templates.ts';
import { HttpError, lookupExits, requestUrl, type HttpHandler, type HttpRouteMatch } from '../north.ts';
import { resolveGuarded } from '../proxies/guarded.ts';
import { pathRoutes, type PathRoutes } from '../path-conditions.ts';
import { contentTypeOf } from './content-types.ts';

const METHODS = ['GET', 'HEAD'];
const INDEX = 'index.html';

export interface CompiledRoute {
  readonly exit: string;
  /** Template of the file path; absent: the request path. */
  readonly path?: string;
}

export function compileRoute(route: RouteConfig, index: number): CompiledRoute {
  const where = `routes[${index}].with.path`;
  const path = route.with?.['path'];
  if (path === undefined) return { exit: route.exit };
  if (typeof path !== 'string') throw new Error(`${where} must be a string`);
  checkTemplate(path, where, capturedParams(route), []);
  return { exit: route.exit, path };
}

/**
 * Whether a decoded value may stand as one segment of a file path: a separator in it came from an
 * escape (`%2f`, `%5c`) and is refused, as are NUL and `.`/`..`, so that no escape reaches a file
 * that plain slashes would not (`/{path}` must not serve `.kgate/cache/...` for
 * `/.kgate%2fcache%2f...`).
 */
function isFileSegment(value: string): boolean {
  return !/[/\\\0]/.test(value) && value !== '.' && value !== '..';
}

/** The request path as a file path, each segment decoded on its own and checked like a parameter. */
function filePathOf(path: string): string {
  return path
    .split('/')
    .map((segment) => {
      let decoded: string;
      try {
        decoded = decodeURIComponent(segment);
      } catch {
        throw new HttpError('KGATE_NOT_FOUND', `${path} is not a valid path`);
      }
      if (decoded !== '' && !isFileSegment(decoded))
        throw new HttpError('KGATE_NOT_FOUND', `${path} not found`);
      return decoded;
    })
    .join('/');
}

/**
 * `${params.name}` lookups for a file path template. A parameter may span segments (`/{path}` takes
 * `/a/b.html`, as in Zilla); the request path was checked segment by segment (filePathOf) first,
 * so each `/` in a value is one the client wrote, and each piece between them must be a file
 * segment, else 404.
 */
function fileParams(
  params: Readonly<Record<string, string>>,
  path: string,
): (name: string) => string | undefined {
  const lookup = paramsLookup(params);
  return (name) => {
    const value = lookup(name);
    if (value !== undefined && !value.split('/').every(isFileSegment))
      throw new HttpError('KGATE_NOT_FOUND', `${path} not found`);
    return value;
  };
}

/** `"x"` and `W/"x"` compare equal: a GET only needs weak comparison (RFC 9110 13.1.2). */
export function matchesIfNoneMatch(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((tag) => {
    const t = tag.trim();
    return t === '*' || t.replace(/^W\//, '') === etag;
  });
}

/**
 * The `http-filesystem proxy` binding: answers GET and HEAD with a file of the filesystem binding
 * its matched route exits to. The ETag follows the file's inode, size and modification time, so a
 * revalidating browser gets 304 until the file changes; `Cache-Control: no-cache` makes it
 * revalidate every time, so edits show up on the next load.
 */
export class HttpFilesystemProxyBinding implements Binding, HttpHandler {
  readonly name: string;
  readonly config: BindingConfig;
  readonly #context: BindingContext;
  readonly #log: Logger;
  readonly #routes = new Map<RouteConfig, CompiledRoute>();
  readonly #matchers: PathRoutes;
  #exits = new Map<string, Binding & FileSource>();

  constructor(context: BindingContext) {
    this.#context = context;
    this.config = context.config;
    this.name = context.config.name;
    this.#log = context.logger;
    this.#matchers = pathRoutes(context.config);
  }

  async start(_signal: AbortSignal): Promise<void> {
    this.#routes.clear();
    this.config.routes.forEach((route, i) => this.#routes.set(route, compileRoute(route, i)));
    this.#exits = lookupExits(this.#context, isFileSource, 'serve files (not a filesystem server)');
  }

  async stop(_signal: AbortSignal): Promise<void> {}

  async handleRequest(req: IncomingMessage, res: ServerResponse, match: HttpRouteMatch): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const url = requestUrl(req.url);
    if (url === undefined) throw new HttpError('KGATE_BAD_REQUEST', 'the request target is not a path');
    const path = url.pathname;
    const resolved = resolveGuarded(
      this.#matchers,
      { method, path },
      match.authorization,
      `${method} ${path}`,
    );
    if (resolved === undefined) throw new HttpError('KGATE_NOT_FOUND', `no route for ${path}`);
    if (!METHODS.includes(method)) {
      res.setHeader('Allow', METHODS.join(', '));
      throw new HttpError('KGATE_METHOD_NOT_ALLOWED', `${path} takes ${METHODS.join(', ')}, not ${method}`);
    }
    const route = resolved.route === undefined ? undefined : this.#routes.get(resolved.route);
    const source = this.#exits.get(resolved.exit);
    if (source === undefined) throw new HttpError('KGATE_INTERNAL', `exit ${resolved.exit} is not started`);
    const checked = filePathOf(path);
    let relative =
      route?.path === undefined ? checked : expand(route.path, fileParams(resolved.params, path));
    if (relative === '' || relative.endsWith('/')) relative += INDEX;
    const file = await source.findFile(relative);
    if (file === undefined) throw new HttpError('KGATE_NOT_FOUND', `${path} not found`);
    await this.#send(req, res, method, file);
  }

  async #send(req: IncomingMessage, res: ServerResponse, method: string, file: FileEntry): Promise<void> {
    const etag = `"${file.version}"`;
    const headers = {
      ETag: etag,
      'Last-Modified': file.mtime.toUTCString(),
      'Cache-Control': 'no-cache',
    };
    if (matchesIfNoneMatch(req.headers['if-none-match'], etag)) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    res.writeHead(200, {
      ...headers,
      'Content-Type': contentTypeOf(file.path),
      'Content-Length': String(file.size),
    });
    if (method === 'HEAD' || file.size === 0) {
      res.end();
      return;
    }
    // Only the bytes announced: a file growing meanwhile must not overrun Content-Length.
    const stream = createReadStream(file.path, { start: 0, end: file.size - 1 });
    try {
      await pipeline(stream, res);
    } catch (error) {
      if (!res.destroyed || (error as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE')
        this.#log.warn({ err: error, file: file.path }, 'file could not be sent');
      res.destroy();
    }
  }
}

export const createHttpFilesystemProxyBinding: BindingFactory = (context) =>
  new HttpFilesystemProxyBinding(context);
