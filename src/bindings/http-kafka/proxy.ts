import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { BindingConfig } from '../../config/index.ts';
import type { Binding, BindingContext, BindingFactory } from '../../engine/binding.ts';
import { HttpError, requestUrl, type HttpHandler, type HttpRouteMatch } from '../north.ts';
import { lookupCacheClients, type CacheClient } from '../proxies/cache-clients.ts';
import type { Exchange } from './exchange.ts';
import { handleFetch, WaitSlots, type FetchContext } from './fetch.ts';
import { httpKafkaMetrics, type HttpKafkaMetrics } from './metrics.ts';
import { httpKafkaOptions } from './options.ts';
import { ProduceHandler } from './produce.ts';
import { ReplyTopics } from './request-reply.ts';
import { allowedMethods, RouteTable, withTopic } from './routes.ts';
import { SharedSnapshots } from './snapshots.ts';

/**
 * Why a request's work was abandoned: its response closed. One instance for every request, since
 * abort() without a reason builds a DOMException, stack and all, for each response that ends.
 */
const CLIENT_GONE = new Error('the client closed the connection');

/**
 * The `http-kafka proxy` binding. Fetch routes answer GET from the cache: the latest value per
 * key merged into one JSON array, or the latest matching message, with an ETag that is the stream
 * progress the answer was read up to; `If-None-Match` resumes from that progress to tell whether
 * anything matching changed since, and `Prefer: wait=N` holds the request until something does
 * (without a merge, a request that finds nothing waits likewise for a match to appear).
 * Produce routes write the request body, streamed and bounded by the topic's max.message.bytes.
 * With `reply-to` they correlate: the request carries the reply topic and a correlation id as
 * Kafka headers, and the response is the reply with that id (waited for, or polled with GET on
 * the async location).
 */
export class HttpKafkaProxyBinding implements Binding, HttpHandler {
  readonly name: string;
  readonly config: BindingConfig;
  /** Produce bodies are bounded by the topic's max.message.bytes and the staging budget instead. */
  readonly boundsBodies = true;
  readonly #context: BindingContext;
  readonly #log: Logger;
  readonly #replies: ReplyTopics;
  readonly #produce: ProduceHandler;
  readonly #metrics: HttpKafkaMetrics;
  readonly #fetch: FetchContext;
  /** Compiled at start, so that a route that is wrong fails the start. */
  #routes: RouteTable;
  #clients = new Map<string, CacheClient>();
  /** Aborts on drain: long waits answer at once instead of holding shutdown. */
  #draining = new AbortController();

  constructor(context: BindingContext) {
    this.#context = context;
    this.config = context.config;
    this.name = context.config.name;
    this.#log = context.logger;
    const options = httpKafkaOptions(context.config.options);
    this.#metrics = httpKafkaMetrics(context.metrics, this.name);
    this.#replies = new ReplyTopics(options, this.#log, this.#metrics);
    this.#produce = new ProduceHandler(options, this.#replies, this.#log);
    const metrics = this.#metrics;
    this.#fetch = {
      snapshots: new SharedSnapshots(options.limits.snapshotReads, () => metrics.readStarted()),
      waits: new WaitSlots(options.limits.waits),
      metrics,
    };
    this.#routes = new RouteTable(this.config);
  }

  async start(_signal: AbortSignal): Promise<void> {
    this.#routes = RouteTable.compile(this.config, (reason, stored) => {
      this.#metrics.contentTypeReplaced(reason);
      // Anyone who may produce can cause this, once per request: debug, and counted.
      this.#log.debug(
        { reason, contentType: stored.slice(0, 128) },
        'stored content type answered as application/octet-stream',
      );
    });
    this.#clients = lookupCacheClients(this.#context);
    this.#draining = new AbortController();
  }

  async stop(_signal: AbortSignal): Promise<void> {
    this.drain();
    await this.#replies.close();
  }

  drain(): void {
    this.#draining.abort();
  }

  async handleRequest(req: IncomingMessage, res: ServerResponse, match: HttpRouteMatch): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const url = requestUrl(req.url);
    if (url === undefined) throw new HttpError('KGATE_BAD_REQUEST', 'the request target is not a path');
    const path = url.pathname;
    const resolved = this.#routes.resolve(method, path, match.authorization);
    if (resolved === undefined) {
      const allowed = this.#routes.methodsOn(path);
      if (allowed.length === 0) throw new HttpError('KGATE_NOT_FOUND', `no route for ${method} ${path}`);
      res.setHeader('Allow', allowed.join(', '));
      throw new HttpError('KGATE_METHOD_NOT_ALLOWED', `${path} takes ${allowed.join(', ')}, not ${method}`);
    }
    const { params } = resolved;
    const route = withTopic(resolved.route, params, match.authorization);
    const client = this.#clients.get(route.exit);
    if (client === undefined) throw new HttpError('KGATE_INTERNAL', `exit ${route.exit} is not started`);
    const allowed = allowedMethods(route);
    if (!allowed.includes(method)) {
      res.setHeader('Allow', allowed.join(', '));
      throw new HttpError('KGATE_METHOD_NOT_ALLOWED', `${path} takes ${allowed.join(', ')}, not ${method}`);
    }
    // The client going away ends the work done for it, cache streams included.
    const gone = new AbortController();
    res.once('close', () => gone.abort(CLIENT_GONE));
    const exchange: Exchange = {
      req,
      res,
      client,
      params,
      gone: gone.signal,
      draining: this.#draining.signal,
      body: match.bodyChunks,
      connection: match.connection,
      ...(match.authorization === undefined ? {} : { authorization: match.authorization }),
    };
    if (route.capability === 'fetch') await handleFetch(exchange, route, this.#fetch);
    else if (method === 'GET') await this.#replies.poll(exchange, route);
    else await this.#produce.handle(exchange, route, method);
  }
}

export const createHttpKafkaProxyBinding: BindingFactory = (context) => new HttpKafkaProxyBinding(context);
