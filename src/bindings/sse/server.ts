import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { BindingConfig } from '../../config/index.ts';
import type { Binding, BindingContext } from '../../engine/binding.ts';
import {
  HttpError,
  isSseHandler,
  lookupExits,
  requestUrl,
  type HttpHandler,
  type HttpRouteMatch,
  type SseHandler,
  type SseRequest,
} from '../north.ts';
import { pathRoutes, type PathRoutes } from '../path-conditions.ts';
import { sseServerOptions } from './options.ts';
import { sseServerMetrics, type SseServerMetrics } from './metrics.ts';
import { ResponseSseStream } from './stream.ts';
import { watchExpiry } from './expiry.ts';
import { admits } from '../../guards/index.ts';

export interface SseServerTuning {
  /** Interval of `:` keep-alive comments on idle streams. Default 15 s. */
  readonly keepAliveMs?: number;
  /** Bytes a stream may queue for a slow client before it is cut. Default 1 MiB. */
  readonly maxBufferedBytes?: number;
}

const DEFAULTS = {
  // Well under the 30-60 s idle timeouts common in proxies and load balancers.
  keepAliveMs: 15_000,
  maxBufferedBytes: 1024 * 1024,
};

/** Whether an Accept header admits `text/event-stream`; absent or empty admits anything. */
export function acceptsEventStream(accept: string | undefined): boolean {
  if (accept === undefined || accept.trim() === '') return true;
  return accept
    .split(',')
    .map((part) => (part.split(';')[0] ?? '').trim().toLowerCase())
    .some((type) => type === 'text/event-stream' || type === 'text/*' || type === '*/*');
}

/**
 * The `sse server` binding: turns GET requests for `text/event-stream` into SseStreams and hands
 * them to the SseHandler its routes choose by path.
 */
export class SseServerBinding implements Binding, HttpHandler {
  readonly name: string;
  readonly config: BindingConfig;
  readonly #context: BindingContext;
  readonly #log: Logger;
  readonly #tuning: Required<SseServerTuning>;
  readonly #routes: PathRoutes;
  readonly #retryMs: number | undefined;
  readonly #metrics: SseServerMetrics;
  readonly #streams = new Set<ResponseSseStream>();
  #exits = new Map<string, SseHandler>();
  #draining = false;

  constructor(context: BindingContext, tuning: SseServerTuning = {}) {
    this.#context = context;
    this.config = context.config;
    this.name = context.config.name;
    this.#log = context.logger;
    this.#tuning = { ...DEFAULTS, ...tuning };
    this.#routes = pathRoutes(context.config);
    this.#retryMs = sseServerOptions(context.config.options).retryMs;
    this.#metrics = sseServerMetrics(context.metrics, this.name);
  }

  /** Streams open right now. */
  get openStreams(): number {
    return this.#streams.size;
  }

  async start(_signal: AbortSignal): Promise<void> {
    this.#exits = lookupExits(this.#context, isSseHandler, 'serve event streams');
  }

  handleRequest(req: IncomingMessage, res: ServerResponse, match: HttpRouteMatch): void {
    if (req.method !== 'GET') {
      res.setHeader('Allow', 'GET');
      throw new HttpError(
        'KGATE_METHOD_NOT_ALLOWED',
        `event streams are opened with GET, not ${req.method ?? 'no method'}`,
      );
    }
    if (!acceptsEventStream(req.headers.accept)) {
      throw new HttpError('KGATE_NOT_ACCEPTABLE', 'this resource serves text/event-stream only');
    }
    const url = requestUrl(req.url);
    if (url === undefined) throw new HttpError('KGATE_BAD_REQUEST', 'the request target is not a path');
    const authorization = match.authorization;
    const line = { method: 'GET', path: url.pathname };
    // A guarded route the request's credentials do not open is passed over; with no route left the
    // answer is 404, as Zilla's sse binding gives it, whatever the reason.
    const resolved = this.#routes.guarded
      ? this.#routes.resolveAdmitted(line, (route) => admits(route.guarded, authorization)).resolved
      : this.#routes.resolve(line);
    const handler = resolved === undefined ? undefined : this.#exits.get(resolved.exit);
    if (resolved === undefined || handler === undefined) {
      throw new HttpError('KGATE_NOT_FOUND', `no event stream at ${url.pathname}`);
    }
    if (this.#draining) {
      res.setHeader('Retry-After', '1');
      throw new HttpError('KGATE_SHUTTING_DOWN', 'shutting down');
    }
    const header = req.headers['last-event-id'];
    const lastEventId =
      typeof header === 'string' ? header : (url.searchParams.get('lastEventId') ?? undefined);
    const request: SseRequest = {
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      params: resolved.params,
      ...(resolved.route === undefined ? {} : { route: resolved.route }),
      ...(lastEventId === undefined ? {} : { lastEventId }),
      ...(authorization === undefined ? {} : { authorization }),
    };
    handler.admit?.(request);

    res.writeHead(200, {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-cache',
      // nginx buffers proxied responses unless told not to, which would hold events back.
      'X-Accel-Buffering': 'no',
    });
    req.socket.setNoDelay(true);
    const stream = new ResponseSseStream(res, {
      maxBufferedBytes: this.#tuning.maxBufferedBytes,
      onOverflow: (buffered) =>
        this.#log.warn({ path: url.pathname, buffered }, 'client too slow; closing its event stream'),
      metrics: this.#metrics,
    });
    if (this.#retryMs !== undefined) stream.retry(this.#retryMs);
    else res.flushHeaders();
    this.#streams.add(stream);
    const keepAlive = setInterval(() => stream.keepAlive(), this.#tuning.keepAliveMs);
    keepAlive.unref();
    let stopExpiry: (() => void) | undefined;
    stream.closed.addEventListener(
      'abort',
      () => {
        clearInterval(keepAlive);
        stopExpiry?.();
        this.#streams.delete(stream);
      },
      { once: true },
    );
    const session = authorization?.session;
    if (session !== undefined) stopExpiry = watchExpiry(stream, session);

    const fail = (error: unknown): void => {
      this.#log.error({ err: error, exit: resolved.exit, path: url.pathname }, 'event stream handler failed');
      stream.close(this.#retryMs);
    };
    try {
      const result = handler.handleEventStream(request, stream);
      if (result instanceof Promise) result.catch(fail);
    } catch (error) {
      fail(error);
    }
  }

  /** Ends every open stream with the retry hint, so clients reconnect (to whichever instance is up). */
  drain(): void {
    if (this.#draining) return;
    this.#draining = true;
    for (const exit of this.#exits.values()) {
      try {
        exit.drain?.();
      } catch (error) {
        this.#log.warn({ err: error }, 'exit failed to drain');
      }
    }
    for (const stream of [...this.#streams]) stream.close(this.#retryMs);
  }

  async stop(_signal: AbortSignal): Promise<void> {
    this.drain();
  }
}

export function createSseServerBinding(context: BindingContext): Binding {
  return new SseServerBinding(context);
}
