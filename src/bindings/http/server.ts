import {
  createServer,
  STATUS_CODES,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { resolveRoute, type BindingConfig } from '../../config/index.ts';
import type { Binding, BindingContext } from '../../engine/binding.ts';
import {
  HttpError,
  isHttpHandler,
  lookupExits,
  type ConnectionHandler,
  type ConnectionInfo,
  type HttpHandler,
  type HttpRouteMatch,
} from '../north.ts';
import { applyCors, parseCorsPolicy, type CorsPolicy } from './cors.ts';

export interface HttpServerLimits {
  /** Request line plus headers; larger requests get 431. Default 16 KiB. */
  readonly maxHeaderBytes?: number;
  /** Request body, as read through `readBody()` or announced by Content-Length; larger gets 413. Default 1 MiB. */
  readonly maxBodyBytes?: number;
  /** Idle time before a keep-alive connection is closed. Default 5 s. */
  readonly keepAliveTimeoutMs?: number;
  /** Time a client may take to send the request headers. Default 60 s. */
  readonly headersTimeoutMs?: number;
}

const DEFAULTS = {
  maxHeaderBytes: 16 * 1024,
  // Kafka's own default record size limit: a larger body could not be produced anyway.
  maxBodyBytes: 1024 * 1024,
  keepAliveTimeoutMs: 5_000,
  headersTimeoutMs: 60_000,
};

/**
 * How long a drain leaves idle connections open. A connection accepted just before the listener
 * closed usually has its request on the way; closing it at once would reset that request.
 */
const DRAIN_IDLE_GRACE_MS = 500;

function errorBody(status: number, message: string): string {
  return JSON.stringify({ status, error: STATUS_CODES[status] ?? 'Error', message });
}

/** Answers with a JSON error; the connection stays open unless `close` says otherwise. */
export function sendError(res: ServerResponse, status: number, message: string, close = false): void {
  const body = errorBody(status, message);
  if (close) res.shouldKeepAlive = false;
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': String(Buffer.byteLength(body)),
    'Cache-Control': 'no-store',
  });
  res.end(body);
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

/**
 * The `http server` binding: speaks HTTP/1.1 on connections handed to it and routes each request by
 * its headers (`:scheme`, `:authority`, `:path`, `:method` and any other) to an HttpHandler exit.
 */
export class HttpServerBinding implements Binding, ConnectionHandler {
  readonly name: string;
  readonly config: BindingConfig;
  readonly #context: BindingContext;
  readonly #log: Logger;
  readonly #limits: Required<HttpServerLimits>;
  readonly #sockets = new Set<Socket>();
  readonly #cors: CorsPolicy | undefined;
  readonly #overrides: [string, string][];
  #server: Server | undefined;
  #exits = new Map<string, HttpHandler>();
  #draining = false;
  #idleGrace: NodeJS.Timeout | undefined;

  constructor(context: BindingContext, limits: HttpServerLimits = {}) {
    this.#context = context;
    this.config = context.config;
    this.name = context.config.name;
    this.#log = context.logger;
    this.#limits = { ...DEFAULTS, ...limits };
    this.#cors = parseCorsPolicy(context.config.options['access-control']);
    const overrides = context.config.options['overrides'];
    this.#overrides =
      typeof overrides === 'object' && overrides !== null
        ? Object.entries(overrides).map(([name, value]): [string, string] => [
            name.toLowerCase(),
            String(value),
          ])
        : [];
  }

  async start(_signal: AbortSignal): Promise<void> {
    this.#exits = lookupExits(this.#context, isHttpHandler, 'serve HTTP requests');
    const versions = this.config.options['versions'];
    if (Array.isArray(versions) && !versions.includes('http/1.1')) {
      throw new Error('kgate speaks HTTP/1.1 only; add http/1.1 to options.versions');
    }
    const server = createServer(
      {
        maxHeaderSize: this.#limits.maxHeaderBytes,
        keepAliveTimeout: this.#limits.keepAliveTimeoutMs,
        headersTimeout: this.#limits.headersTimeoutMs,
        requestTimeout: 0,
        connectionsCheckingInterval: Math.min(1_000, this.#limits.headersTimeoutMs),
      },
      (req, res) => this.#onRequest(req, res),
    );
    server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) =>
      this.#onClientError(error, socket),
    );
    // The server never listens itself (connections come from the binding in front), but Node arms its
    // header timeout checks on 'listening'; without them a client trickling headers would hold a socket forever.
    server.emit('listening');
    this.#server = server;
  }

  acceptConnection(socket: Socket, _info: ConnectionInfo): void {
    const server = this.#server;
    if (server === undefined || this.#draining) {
      socket.destroy();
      return;
    }
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    server.emit('connection', socket);
  }

  drain(): void {
    if (this.#draining) return;
    this.#draining = true;
    this.#idleGrace = setTimeout(() => this.#server?.closeIdleConnections(), DRAIN_IDLE_GRACE_MS);
    this.#idleGrace.unref();
    for (const exit of this.#exits.values()) {
      try {
        exit.drain?.();
      } catch (error) {
        this.#log.warn({ err: error }, 'exit failed to drain');
      }
    }
  }

  async stop(signal: AbortSignal): Promise<void> {
    this.drain();
    const server = this.#server;
    if (server === undefined) return;
    clearTimeout(this.#idleGrace);
    while (this.#sockets.size > 0 && !signal.aborted) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      server.closeIdleConnections();
    }
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    this.#server = undefined;
  }

  #onClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
    const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (error.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent === true) {
      socket.destroy();
      return;
    }
    let status = 400;
    let message = `malformed request: ${error.message}`;
    if (error.code === 'HPE_HEADER_OVERFLOW') {
      status = 431;
      message = `request headers are larger than ${this.#limits.maxHeaderBytes} bytes`;
    } else if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      status = 408;
      message = 'request headers did not arrive in time';
    }
    this.#log.debug({ err: error.message, code: error.code, status }, 'bad request');
    const body = errorBody(status, message);
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    if (this.#draining) res.shouldKeepAlive = false;
    res.once('finish', () => {
      // Responses that began before the drain would otherwise leave their connection idling until the deadline.
      if (this.#draining) req.socket.end();
    });
    for (const [name, value] of this.#overrides) req.headers[name] = value;
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';

    if (this.#cors !== undefined) {
      const outcome = applyCors(this.#cors, req, res);
      if (outcome.kind === 'answered') return;
      if (outcome.kind === 'forbidden') {
        sendError(res, 403, outcome.message);
        return;
      }
    }

    const facts: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      const text = headerValue(value);
      if (text !== undefined) facts[name] = text;
    }
    facts[':scheme'] = (req.socket as Socket & { encrypted?: boolean }).encrypted === true ? 'https' : 'http';
    facts[':authority'] = req.headers.host ?? '';
    facts[':path'] = path;
    facts[':method'] = method;
    const resolved = resolveRoute(this.config, facts);
    const handler = resolved === undefined ? undefined : this.#exits.get(resolved.exit);
    if (resolved === undefined || handler === undefined) {
      sendError(res, 404, `no route for ${method} ${path}`);
      return;
    }

    const announced = Number(req.headers['content-length'] ?? 0);
    if (announced > this.#limits.maxBodyBytes) {
      sendError(res, 413, this.#bodyTooLarge(), true);
      return;
    }

    const match: HttpRouteMatch = {
      params: resolved.params,
      ...(resolved.route === undefined ? {} : { route: resolved.route }),
      readBody: () => this.#readBody(req, res),
    };
    const fail = (error: unknown): void => this.#handlerFailed(req, res, resolved.exit, error);
    try {
      const result = handler.handleRequest(req, res, match);
      if (result instanceof Promise) result.catch(fail);
    } catch (error) {
      fail(error);
    }
  }

  #bodyTooLarge(): string {
    return `request body is larger than ${this.#limits.maxBodyBytes} bytes`;
  }

  #readBody(req: IncomingMessage, res: ServerResponse): Promise<Buffer> {
    const limit = this.#limits.maxBodyBytes;
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const cleanup = (): void => {
        req.off('data', onData);
        req.off('end', onEnd);
        req.off('error', onError);
      };
      const onData = (chunk: Buffer): void => {
        size += chunk.length;
        if (size > limit) {
          cleanup();
          req.pause();
          // The rest of the body is never read, so the connection cannot carry another request.
          res.shouldKeepAlive = false;
          reject(new HttpError(413, this.#bodyTooLarge()));
          return;
        }
        chunks.push(chunk);
      };
      const onEnd = (): void => {
        cleanup();
        resolve(Buffer.concat(chunks, size));
      };
      const onError = (error: Error): void => {
        cleanup();
        reject(new HttpError(400, `request body did not arrive: ${error.message}`, { cause: error }));
      };
      req.on('data', onData);
      req.on('end', onEnd);
      req.on('error', onError);
    });
  }

  #handlerFailed(req: IncomingMessage, res: ServerResponse, exit: string, error: unknown): void {
    const status = error instanceof HttpError ? error.status : 500;
    const message = error instanceof Error ? error.message : String(error);
    if (status >= 500) {
      this.#log.error({ err: error, exit, method: req.method, path: req.url }, 'request handler failed');
    } else {
      this.#log.debug({ exit, method: req.method, path: req.url, status, message }, 'request refused');
    }
    if (res.headersSent) {
      // Part of a response is out; the only honest signal left is an incomplete one.
      res.destroy();
      return;
    }
    sendError(res, status, error instanceof HttpError ? message : `request failed: ${message}`);
  }
}

export function createHttpServerBinding(context: BindingContext): Binding {
  return new HttpServerBinding(context);
}
