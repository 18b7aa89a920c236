import { createServer, ServerResponse, STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import {
  constants as http2,
  createServer as createHttp2Server,
  type Http2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type ServerHttp2Session,
} from 'node:http2';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { BindingConfig, RouteTable } from '../../config/index.ts';
import type { Binding, BindingContext } from '../../engine/binding.ts';
import { ERROR_CODES, errorCodeOf, statusOf } from '../../engine/errors.ts';
import type { TopicModel } from '../../models/topic-model.ts';
import {
  CredentialsError,
  HttpError,
  isHttpHandler,
  refuseCredentials,
  type BodyPressure,
  lookupExits,
  type ConnectionHandler,
  type ConnectionInfo,
  type HttpHandler,
  type HttpRouteMatch,
} from '../north.ts';
import {
  BodyTimeoutError,
  DEFAULT_BODY_IDLE_MS,
  readBodyChunks,
  type BodyTimeoutKind,
  type BodyTimeouts,
} from './body.ts';
import { admits, type Authorization, type Guard } from '../../guards/index.ts';
import { authorize, type CredentialsSources, withoutCredentials } from './authorization.ts';
import { applyCors } from './cors.ts';
import { headerRoutes, type HeaderCondition, type RequestHead } from './header-conditions.ts';
import { createHttpServerMetrics, type HttpServerMetrics } from './metrics.ts';
import { httpServerOptions, type HttpServerOptions } from './options.ts';
import { refuseTarget, refuseVersion } from './request-line.ts';
import { hasBody, oneChunk, RequestRules } from './requests.ts';
import { keepSessionOnStreamErrors } from './stream-errors.ts';
import { parseVersions, sniffVersion, type HttpVersion } from './versions.ts';
import { HttpExchangeMetrics } from './zilla-metrics.ts';
import { zillaEvents, type ZillaEvents } from '../../telemetry/events.ts';

export interface HttpServerLimits {
  /** Request line plus headers; larger requests get 431. Default 16 KiB. */
  readonly maxHeaderBytes?: number;
  /**
   * Request body, as read through `readBody()` or announced by Content-Length; larger gets 413.
   * Default 1 MiB. Handlers that stream and bound bodies themselves (`boundsBodies`) are exempt.
   */
  readonly maxBodyBytes?: number;
  /** Idle time before a keep-alive connection is closed. Default 5 s. */
  readonly keepAliveTimeoutMs?: number;
  /** Time a client may take to send the request headers. Default 60 s. */
  readonly headersTimeoutMs?: number;
  /** Longest a body read through the server may send nothing. Default 30 s. */
  readonly bodyIdleTimeoutMs?: number;
  /** Longest a whole body read through the server may take. Default: scaled to its size. */
  readonly bodyTimeoutMs?: number;
}

const DEFAULTS = {
  maxHeaderBytes: 16 * 1024,
  // Kafka's own default record size limit: a larger body could not be produced anyway.
  maxBodyBytes: 1024 * 1024,
  keepAliveTimeoutMs: 5_000,
  headersTimeoutMs: 60_000,
  bodyIdleTimeoutMs: DEFAULT_BODY_IDLE_MS,
};

type Limits = typeof DEFAULTS & Pick<HttpServerLimits, 'bodyTimeoutMs'>;

/** How a body given up is counted in kgate_http_server_requests_rejected_total. */
const BODY_TIMEOUT_REASONS: Readonly<Record<BodyTimeoutKind, string>> = {
  idle: 'body_idle_timeout',
  stalled: 'body_stalled',
  total: 'body_timeout',
};

/**
 * How long a drain leaves idle connections open. A connection accepted just before the listener
 * closed usually has its request on the way; closing it at once would reset that request.
 */
const DRAIN_IDLE_GRACE_MS = 500;

/**
 * `Retry-After` of a 503 that passes by itself, unless the handler set one: about as long as kgate
 * waits between attempts to reach a broker that is not there.
 */
const RETRY_AFTER_SECONDS = 2;

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function errorBody(status: number, message: string): string {
  return JSON.stringify({ status, error: STATUS_CODES[status] ?? 'Error', message });
}

/**
 * Sent with every response: browsers take the Content-Type as given instead of guessing from the
 * body, so a value a producer wrote is never run as a script or a page of this origin.
 */
const NOSNIFF = ['X-Content-Type-Options', 'nosniff'] as const;

/** The head of an answer written straight to the socket, before or instead of the HTTP parser. */
function rawErrorHead(status: number, body: string): string {
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: application/json\r\n` +
    `${NOSNIFF[0]}: ${NOSNIFF[1]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n`
  );
}

/** Answers with a JSON error; the connection stays open unless `close` says otherwise. */
export function sendError(res: ServerResponse, status: number, message: string, close = false): void {
  const body = errorBody(status, message);
  if (close) res.shouldKeepAlive = false;
  // Its own reason phrase: a handler whose writeHead threw may have left another one set (HTTP/2
  // has no reason phrase, and warns when given one).
  if (res instanceof ServerResponse) res.statusMessage = STATUS_CODES[status] ?? 'Error';
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': String(Buffer.byteLength(body)),
    'Cache-Control': 'no-store',
    [NOSNIFF[0]]: NOSNIFF[1],
  });
  res.end(body);
}

/**
 * HTTP/2 clients are told a header list limit this much larger than `maxHeaderBytes`, so that a
 * request a little over the limit gets a 431 answer, as over HTTP/1.1, rather than a reset stream.
 */
const HTTP2_HEADER_LIST_HEADROOM = 4;
const HTTP2_MIN_HEADER_LIST_SIZE = 64 * 1024;

/** The size of a header list as HTTP/2 counts it (RFC 9113 6.5.2): name, value and 32 per field. */
function headerListSize(rawHeaders: readonly string[]): number {
  let size = 0;
  for (const field of rawHeaders) size += field.length;
  return size + (rawHeaders.length / 2) * 32;
}

/**
 * The `http server` binding: speaks HTTP/1.1 and HTTP/2 on connections handed to it and routes each
 * request by its headers (`:scheme`, `:authority`, `:path`, `:method` and any other) to an
 * HttpHandler exit. HTTP/2 is spoken over TLS when the `tls server` in front negotiated `h2` by
 * ALPN, and on plain connections that open with the HTTP/2 preface (prior knowledge, "h2c").
 */
export class HttpServerBinding implements Binding, ConnectionHandler {
  readonly name: string;
  readonly config: BindingConfig;
  readonly #context: BindingContext;
  readonly #log: Logger;
  readonly #limits: Limits;
  readonly #bodyTimeouts: BodyTimeouts;
  readonly #options: HttpServerOptions;
  readonly #routes: RouteTable<RequestHead, HeaderCondition>;
  readonly #requests: RequestRules;
  readonly #sockets = new Set<Socket>();
  /** HTTP/1.1 requests each connection has received and not answered yet. */
  readonly #pending = new WeakMap<Socket, number>();
  readonly #sessions = new Set<ServerHttp2Session>();
  readonly #metrics: HttpServerMetrics;
  readonly #zilla: HttpExchangeMetrics | undefined;
  readonly #events: ZillaEvents;
  #versions: ReadonlySet<HttpVersion> = new Set();
  #http1: Server | undefined;
  #http2: Http2Server | undefined;
  #exits = new Map<string, HttpHandler>();
  /** The guard the `authorization` option names, with where requests carry credentials for it. */
  #authorizer: { readonly sources: CredentialsSources; readonly guard: Guard } | undefined;
  #draining = false;
  #idleGrace: NodeJS.Timeout | undefined;

  constructor(context: BindingContext, limits: HttpServerLimits = {}) {
    this.#context = context;
    this.config = context.config;
    this.name = context.config.name;
    this.#log = context.logger;
    this.#options = httpServerOptions(context.config.options);
    this.#limits = { ...DEFAULTS, ...this.#options.timeouts, ...limits };
    const totalMs = this.#limits.bodyTimeoutMs;
    this.#bodyTimeouts = {
      idleMs: this.#limits.bodyIdleTimeoutMs,
      ...(totalMs === undefined ? {} : { totalMs }),
    };
    this.#routes = headerRoutes(context.config);
    this.#requests = new RequestRules(this.#options.requests, context.catalogs ?? {}, context.configFile);
    this.#metrics = createHttpServerMetrics(context.metrics, context.config.name);
    this.#zilla = HttpExchangeMetrics.of(context.metrics, context.config);
    this.#events = zillaEvents(context.metrics);
  }

  async start(_signal: AbortSignal): Promise<void> {
    this.#exits = lookupExits(this.#context, isHttpHandler, 'serve HTTP requests');
    const sources = this.#options.authorization;
    if (sources !== undefined) {
      const guard = this.#context.guards?.get(sources.guard);
      if (guard === undefined) throw new Error(`options.authorization: no guard named ${sources.guard}`);
      this.#authorizer = { sources, guard };
    }
    this.#versions = parseVersions(this.#options.versions);
    const http1 = createServer(
      {
        maxHeaderSize: this.#limits.maxHeaderBytes,
        keepAliveTimeout: this.#limits.keepAliveTimeoutMs,
        headersTimeout: this.#limits.headersTimeoutMs,
        requestTimeout: 0,
        connectionsCheckingInterval: Math.min(1_000, this.#limits.headersTimeoutMs),
      },
      (req, res) => this.#onHttp1Request(req, res),
    );
    http1.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) =>
      this.#onClientError(error, socket),
    );
    // The server never listens itself (connections come from the binding in front), but Node arms its
    // header timeout checks on 'listening'; without them a client trickling headers would hold a socket forever.
    http1.emit('listening');
    const http2 = createHttp2Server({
      settings: {
        // A stream past it is refused by nghttp2 itself (REFUSED_STREAM), before any handler runs.
        maxConcurrentStreams: this.#options.limits.concurrentStreams,
        maxHeaderListSize: Math.max(
          HTTP2_MIN_HEADER_LIST_SIZE,
          this.#limits.maxHeaderBytes * HTTP2_HEADER_LIST_HEADROOM,
        ),
      },
    });
    http2.on('request', (req, res) => this.#onHttp2Request(req, res));
    http2.on('session', (session) => this.#onSession(session));
    http2.on('sessionError', (error) => this.#log.debug({ err: error }, 'HTTP/2 session failed'));
    this.#http1 = http1;
    this.#http2 = http2;
  }

  acceptConnection(socket: Socket, info: ConnectionInfo): void {
    if (this.#http1 === undefined || this.#draining) {
      socket.destroy();
      return;
    }
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    if (info.secure === true) {
      // Over TLS the version was agreed on in the handshake; without ALPN it is HTTP/1.1.
      this.#serve(socket, info.alpn === 'h2' ? 'h2' : 'http/1.1');
    } else if (this.#versions.has('h2')) {
      sniffVersion(socket, this.#limits.headersTimeoutMs, (version) => {
        if (version !== undefined) this.#serve(socket, version);
      });
    } else {
      this.#serve(socket, 'http/1.1');
    }
  }

  #serve(socket: Socket, version: HttpVersion): void {
    const server = version === 'h2' ? this.#http2 : this.#http1;
    if (server === undefined) {
      socket.destroy();
      return;
    }
    if (!this.#versions.has(version)) {
      this.#refuseVersion(socket, version);
      return;
    }
    socket.once('close', this.#metrics.connectionOpened(version));
    server.emit('connection', socket);
    // A sniffed connection was paused with its first bytes put back. The HTTP/2 session takes
    // buffered bytes itself; the HTTP/1.1 parser reads them only from a flowing socket.
    if (version === 'http/1.1' && socket.isPaused()) socket.resume();
  }

  #refuseVersion(socket: Socket, version: HttpVersion): void {
    this.#metrics.rejected(505);
    this.#log.debug({ version, versions: [...this.#versions] }, 'HTTP version not enabled; closing');
    if (version === 'h2') {
      // An HTTP/2 client would not read an HTTP/1.1 answer.
      socket.destroy();
      return;
    }
    const body = errorBody(505, `this server speaks ${[...this.#versions].join(', ')}`);
    socket.resume();
    socket.end(rawErrorHead(505, body) + body);
  }

  /** Closes sessions that stay without a stream for the keep-alive time, as HTTP/1.1 connections are. */
  #onSession(session: ServerHttp2Session): void {
    this.#sessions.add(session);
    session.on('error', (error) => this.#log.debug({ err: error }, 'HTTP/2 session error'));
    keepSessionOnStreamErrors(session, () => {
      this.#metrics.rejected(400);
      this.#log.debug('HTTP/2 stream reset for a protocol error; the session goes on');
    });
    let open = 0;
    let idle: NodeJS.Timeout | undefined;
    const closeIdle = (): void => {
      session.close();
      // GOAWAY ends the session once its streams are done, but a header block the client never
      // finishes is no stream yet and would hold the connection for good (slowloris over
      // HTTP/2): if no stream has started one keep-alive period later, the session goes.
      idle = setTimeout(() => {
        if (open === 0) session.destroy();
      }, this.#limits.keepAliveTimeoutMs);
      idle.unref();
    };
    const armIdle = (): void => {
      idle = setTimeout(closeIdle, this.#limits.keepAliveTimeoutMs);
      idle.unref();
    };
    session.on('stream', (stream) => {
      open++;
      clearTimeout(idle);
      stream.once('close', () => {
        if (--open === 0 && !session.closed) armIdle();
      });
    });
    session.once('close', () => {
      clearTimeout(idle);
      this.#sessions.delete(session);
    });
    if (this.#draining) session.close();
    else armIdle();
  }

  drain(): void {
    if (this.#draining) return;
    this.#draining = true;
    this.#idleGrace = setTimeout(() => this.#http1?.closeIdleConnections(), DRAIN_IDLE_GRACE_MS);
    this.#idleGrace.unref();
    // GOAWAY: streams already open run to their end, new ones go elsewhere.
    for (const session of this.#sessions) session.close();
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
    const http1 = this.#http1;
    const http2 = this.#http2;
    if (http1 === undefined || http2 === undefined) return;
    clearTimeout(this.#idleGrace);
    while (this.#sockets.size > 0 && !signal.aborted) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      http1.closeIdleConnections();
    }
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
    await Promise.all([
      new Promise<void>((resolve) => http1.close(() => resolve())),
      new Promise<void>((resolve) => http2.close(() => resolve())),
    ]);
    this.#http1 = undefined;
    this.#http2 = undefined;
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
    this.#metrics.rejected(status);
    this.#log.debug({ err: error, code: error.code, status }, 'bad request');
    const body = errorBody(status, message);
    socket.end(rawErrorHead(status, body) + body);
  }

  #onHttp1Request(req: IncomingMessage, res: ServerResponse): void {
    if (this.#draining) res.shouldKeepAlive = false;
    res.once('finish', () => {
      // Responses that began before the drain would otherwise leave their connection idling until the deadline.
      if (this.#draining) req.socket.end();
    });
    const refused = refuseVersion(req);
    if (refused !== undefined) {
      this.#observe(req, res);
      this.#reject(res, refused.status, refused.message, true);
      return;
    }
    // node:http parses every request a client pipelines and queues their responses, each holding
    // whatever its handler wrote until the ones before it are out. Counted per connection, they
    // are bounded; and a request is handed to its handler only once its response is the one the
    // connection is writing, so a client that reads nothing has one answer built, not one per request.
    const socket = req.socket;
    const pending = (this.#pending.get(socket) ?? 0) + 1;
    this.#pending.set(socket, pending);
    res.once('close', () => this.#pending.set(socket, (this.#pending.get(socket) ?? 1) - 1));
    const limit = this.#options.limits.pipelinedRequests;
    if (pending > limit) {
      this.#observe(req, res);
      res.setHeader('Retry-After', '1');
      this.#log.debug({ limit }, 'too many pipelined requests; closing the connection after the answer');
      this.#reject(
        res,
        statusOf('KGATE_OVERLOADED'),
        `more than ${limit} requests in flight on one connection (limits.pipelined-requests)`,
        true,
        'pipelined_requests',
      );
      return;
    }
    if (res.socket === null) res.once('socket', () => this.#onRequest(req, res, socket));
    else this.#onRequest(req, res, socket);
  }

  #onHttp2Request(req: Http2ServerRequest, res: Http2ServerResponse): void {
    const stream = res.stream;
    stream.once('finish', () => {
      // A response out before the request body was read to its end (a refused body, say) leaves the
      // client sending into a stream nobody reads; RFC 9113 8.1 lets the server end it with NO_ERROR.
      if (!req.readableEnded && !stream.endAfterHeaders && !stream.closed)
        stream.close(http2.NGHTTP2_NO_ERROR);
    });
    // The compatibility objects implement the IncomingMessage and ServerResponse API the exits use;
    // the connection-level parts (shouldKeepAlive, writing to the socket) have no effect over HTTP/2.
    const request = req as unknown as IncomingMessage;
    const response = res as unknown as ServerResponse;
    if (headerListSize(req.rawHeaders) > this.#limits.maxHeaderBytes) {
      this.#observe(request, response);
      this.#reject(response, 431, `request headers are larger than ${this.#limits.maxHeaderBytes} bytes`);
      return;
    }
    this.#onRequest(request, response, stream.session ?? stream);
  }

  /** Counts the request once its response is done, or abandoned. */
  #observe(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    const zilla = this.#zilla;
    zilla?.begin();
    res.once('close', () => {
      const ms = performance.now() - started;
      this.#metrics.requestDone(req.method ?? 'GET', res.headersSent ? res.statusCode : undefined, ms / 1000);
      zilla?.end(req, res, ms);
    });
  }

  /**
   * Zilla's request-accepted event. The query string is left out, unlike Zilla: it may carry a
   * credential (`?access_token=`), and event lines go wherever standard output goes.
   */
  #accepted(req: IncomingMessage): void {
    const scheme = 'encrypted' in req.socket && req.socket.encrypted === true ? 'https' : 'http';
    const authority = req.headers[':authority'] ?? req.headers.host ?? '';
    const target = req.url ?? '/';
    const query = target.indexOf('?');
    const path = query < 0 ? target : target.slice(0, query);
    this.#events.requestAccepted(this.name, req.method ?? 'GET', scheme, String(authority), path);
  }

  #reject(res: ServerResponse, status: number, message: string, close = false, reason?: string): void {
    this.#metrics.rejected(status, reason);
    sendError(res, status, message, close);
  }

  #onRequest(req: IncomingMessage, res: ServerResponse, connection: object): void {
    this.#observe(req, res);
    if (this.#events.enabled) this.#accepted(req);
    res.setHeader(NOSNIFF[0], NOSNIFF[1]);
    for (const [name, value] of this.#options.overrides) req.headers[name] = value;
    const path = req.url ?? '/';
    const refused = refuseTarget(path);
    if (refused !== undefined) {
      this.#reject(res, refused.status, refused.message);
      return;
    }

    const cors = this.#options.cors;
    if (cors !== undefined) {
      const outcome = applyCors(cors, req, res);
      if (outcome.kind === 'answered') return;
      if (outcome.kind === 'forbidden') {
        this.#reject(res, 403, outcome.message);
        return;
      }
    }

    const authorizer = this.#authorizer;
    if (authorizer === undefined) {
      this.#route(req, res, connection, undefined);
      return;
    }
    authorize(req, authorizer.sources, authorizer.guard).then(
      (authorization) => {
        if (authorization.refused !== undefined)
          this.#log.debug(
            { guard: authorization.guard, reason: authorization.refused },
            'credentials refused',
          );
        if (!res.destroyed) this.#route(req, res, connection, authorization);
      },
      (error: unknown) => this.#handlerFailed(req, res, 'authorization', error),
    );
  }

  #route(
    req: IncomingMessage,
    res: ServerResponse,
    connection: object,
    authorization: Authorization | undefined,
  ): void {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    let resolved;
    if (authorization === undefined && !this.#routes.guarded) resolved = this.#routes.resolve(req);
    else {
      const outcome = this.#routes.resolveAdmitted(req, (route) => admits(route.guarded, authorization));
      resolved = outcome.resolved;
      if (resolved === undefined && outcome.refused !== undefined) {
        const guard = Object.keys(outcome.refused.guarded ?? {})[0] ?? '';
        const error = refuseCredentials(authorization, guard, `${method} ${this.#shown(req)}`);
        res.setHeader('WWW-Authenticate', error.challenge);
        this.#reject(res, error.status, error.message);
        return;
      }
    }
    const handler = resolved === undefined ? undefined : this.#exits.get(resolved.exit);
    if (resolved === undefined || handler === undefined) {
      this.#reject(res, 404, `no route for ${method} ${this.#shown(req)}`);
      return;
    }

    const announced = Number(req.headers['content-length'] ?? 0);
    if (announced > this.#limits.maxBodyBytes && handler.boundsBodies !== true) {
      this.#reject(res, 413, this.#bodyTooLarge(), true);
      return;
    }

    const bodyChunks = (maxBytes?: number, pressure?: BodyPressure): AsyncIterable<Buffer> =>
      readBodyChunks(
        req,
        this.#bodyTimeouts,
        maxBytes,
        () => {
          // The rest of the body is never read, so the connection cannot carry another request.
          res.shouldKeepAlive = false;
        },
        pressure,
      );
    const match: HttpRouteMatch = {
      params: resolved.params,
      ...(resolved.route === undefined ? {} : { route: resolved.route }),
      readBody: () => this.#readBody(bodyChunks),
      bodyChunks,
      connection,
      ...(authorization === undefined ? {} : { authorization }),
    };
    const fail = (error: unknown): void => this.#handlerFailed(req, res, resolved.exit, error);
    const rule = this.#requests.size === 0 ? undefined : this.#requests.ruleFor(method, path);
    if (rule !== undefined) {
      const refusal = rule.contentTypeProblem(req.headers['content-type']);
      if (refusal !== undefined) {
        // The body stays unread, so the connection cannot carry another request.
        this.#reject(res, 400, refusal.message, hasBody(req));
        return;
      }
      const model = rule.content;
      if (model !== undefined) {
        this.#checkedBody(bodyChunks, model).then((body) => {
          const whole: HttpRouteMatch = {
            ...match,
            readBody: () => Promise.resolve(body),
            bodyChunks: () => oneChunk(body),
          };
          this.#dispatch(handler, req, res, whole, fail);
        }, fail);
        return;
      }
    }
    this.#dispatch(handler, req, res, match, fail);
  }

  #dispatch(
    handler: HttpHandler,
    req: IncomingMessage,
    res: ServerResponse,
    match: HttpRouteMatch,
    fail: (error: unknown) => void,
  ): void {
    try {
      const result = handler.handleRequest(req, res, match);
      if (result instanceof Promise) result.catch(fail);
    } catch (error) {
      fail(error);
    }
  }

  /** The whole body, once it fits the model of the request's `requests` entry; else a 400. */
  async #checkedBody(
    bodyChunks: (maxBytes?: number) => AsyncIterable<Buffer>,
    model: TopicModel,
  ): Promise<Buffer> {
    const body = await this.#readBody(bodyChunks);
    try {
      await model.encode(body);
    } catch (error) {
      throw new HttpError(errorCodeOf(error) ?? 'KGATE_INTERNAL', messageOf(error), { cause: error });
    }
    return body;
  }

  /** The request target as messages and logs show it: without credentials a query parameter carries. */
  #shown(req: IncomingMessage): string {
    const target = req.url ?? '/';
    const sources = this.#authorizer?.sources;
    return sources === undefined ? target : withoutCredentials(target, sources);
  }

  #bodyTooLarge(): string {
    return `request body is larger than ${this.#limits.maxBodyBytes} bytes`;
  }

  async #readBody(bodyChunks: (maxBytes?: number) => AsyncIterable<Buffer>): Promise<Buffer> {
    const limit = this.#limits.maxBodyBytes;
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of bodyChunks(limit)) {
        size += chunk.length;
        if (size > limit) throw new HttpError('KGATE_BODY_TOO_LARGE', this.#bodyTooLarge());
        chunks.push(chunk);
      }
    } catch (error) {
      if (error instanceof HttpError) throw error;
      throw new HttpError('KGATE_BAD_REQUEST', `request body did not arrive: ${messageOf(error)}`, {
        cause: error,
      });
    }
    return Buffer.concat(chunks, size);
  }

  #handlerFailed(req: IncomingMessage, res: ServerResponse, exit: string, error: unknown): void {
    const status = error instanceof HttpError ? error.status : statusOf('KGATE_INTERNAL');
    const reason = error instanceof BodyTimeoutError ? BODY_TIMEOUT_REASONS[error.kind] : undefined;
    const message = error instanceof Error ? error.message : String(error);
    // A 503 that passes by itself (Kafka out of reach, a wait for it that ran out) tells the
    // client when to try again; its cause is logged once where it happens, not per request.
    const passing = error instanceof HttpError && status === 503 && ERROR_CODES[error.code].retriable;
    if (passing && !res.headersSent && !res.hasHeader('Retry-After'))
      res.setHeader('Retry-After', String(RETRY_AFTER_SECONDS));
    if (status >= 500 && !passing) {
      this.#log.error(
        { err: error, exit, method: req.method, path: this.#shown(req) },
        'request handler failed',
      );
    } else {
      this.#log.debug(
        { exit, method: req.method, path: this.#shown(req), status, message },
        'request refused',
      );
    }
    if (error instanceof CredentialsError && !res.headersSent)
      res.setHeader('WWW-Authenticate', error.challenge);
    if (res.headersSent) {
      // Part of a response is out; the only honest signal left is an incomplete one.
      res.destroy();
      return;
    }
    this.#reject(
      res,
      status,
      error instanceof HttpError ? message : `request failed: ${message}`,
      false,
      reason,
    );
  }
}

export function createHttpServerBinding(context: BindingContext): Binding {
  return new HttpServerBinding(context);
}
