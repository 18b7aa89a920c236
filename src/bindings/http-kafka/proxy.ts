import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { resolveRoute, type BindingConfig, type RouteConfig } from '../../config/index.ts';
import type { Binding, BindingContext, BindingFactory } from '../../engine/binding.ts';
import { HttpError, type HttpHandler, type HttpRouteMatch } from '../north.ts';
import {
  HeadReader,
  type Acks,
  lookupKey,
  NotCaughtUpError,
  type CachedTopic,
  type CacheMessage,
  type CacheStream,
  type KeyLookup,
} from '../kafka/cache_client/index.ts';
import {
  kafkaErrorStatus,
  lookupCacheClients,
  messageOf,
  type CacheClient,
} from '../proxies/cache-clients.ts';
import { buildFilters, filterTemplates, type FilterTemplate } from '../proxies/filter-templates.ts';
import { capturedParams, checkTemplate, expand, paramsLookup } from '../proxies/templates.ts';
import { etagOf, parseIfNoneMatch, progressFromIfNoneMatch } from './etag.ts';
import { pinnedKey, type PinnedKey } from './pinned-key.ts';
import { parsePrefer } from './prefer.ts';
import { kafkaHeader, ReplyWatcher, replyOf, type Reply } from './replies.ts';

/** Longest a fetch waits for the cache to catch up with the topic before answering 504. */
export const CATCH_UP_MS = 30_000;

/**
 * Why a request's work was abandoned: its response closed. One instance for every request, since
 * abort() without a reason builds a DOMException, stack and all, for each response that ends.
 */
const CLIENT_GONE = new Error('the client closed the connection');
/** Largest merged document a fetch builds in memory; past it the request fails with a clear error. */
export const MAX_MERGED_BYTES = 16 * 1024 * 1024;

const PRODUCE_METHODS = ['POST', 'PUT', 'PATCH', 'DELETE'];
const FETCH_METHODS = ['GET', 'HEAD'];
const REQUEST_REPLY_METHODS = [...PRODUCE_METHODS, 'GET'];
const ACKS: Record<string, Acks> = { none: 0, leader_only: 1, in_sync_replicas: -1 };
const DEFAULT_IDEMPOTENCY_HEADER = 'idempotency-key';
const DEFAULT_REPLY_TO_HEADER = 'zilla:reply-to';
const DEFAULT_CORRELATION_ID_HEADER = 'zilla:correlation-id';
/**
 * How long a request-reply produce waits for its reply when the client sent no `Prefer: wait`;
 * past it the answer is 202 with the route's async location when it has one, else 504.
 */
export const REPLY_WAIT_SECONDS = 60;

interface FetchRoute {
  readonly capability: 'fetch';
  readonly exit: string;
  readonly topic: string;
  readonly filters: readonly FilterTemplate[];
  /** Content type of the merged document; absent: answer the one latest matching message. */
  readonly merge?: string;
}

interface ProduceRoute {
  readonly capability: 'produce';
  readonly exit: string;
  readonly topic: string;
  readonly key?: string;
  readonly overrides: readonly (readonly [string, string])[];
  readonly acks?: Acks;
  /** Set when the route answers `Prefer: respond-async` with 202; the location may be absent. */
  readonly async?: { readonly location?: string };
  /** Topic the correlated reply comes back on; the request then answers with the reply. */
  readonly replyTo?: string;
  /** Template of the correlation id; a fresh UUID per request when absent. */
  readonly correlationId?: string;
}

type CompiledRoute = FetchRoute | ProduceRoute;

function str(value: unknown, where: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new Error(`${where} must be a string`);
  return value;
}

function compileRoute(route: RouteConfig, index: number): CompiledRoute {
  const where = `routes[${index}].with`;
  const w = route.with ?? {};
  const topic = str(w['topic'], `${where}.topic`);
  if (topic === undefined) throw new Error(`${where}.topic is required`);
  const params = capturedParams(route);
  if (w['capability'] === 'fetch') {
    const merge = w['merge'] as Record<string, unknown> | undefined;
    const contentType =
      merge === undefined ? undefined : str(merge['content-type'], `${where}.merge.content-type`);
    const patch = merge?.['patch'] as Record<string, unknown> | undefined;
    // Only the one merge Zilla configs use in practice: every message appended to an array.
    if (patch !== undefined) {
      const initial = str(patch['initial'], `${where}.merge.patch.initial`) ?? '[]';
      const path = str(patch['path'], `${where}.merge.patch.path`) ?? '/-';
      if (initial.replace(/\s/g, '') !== '[]' || path !== '/-')
        throw new Error(`${where}.merge.patch: only initial "[]" with path "/-" is supported`);
    }
    const filters = filterTemplates(w['filters'], where, params);
    return {
      capability: 'fetch',
      exit: route.exit,
      topic,
      filters,
      ...(contentType === undefined ? {} : { merge: contentType }),
    };
  }
  const produceNames = ['idempotencyKey', 'correlationId'];
  const replyTo = str(w['reply-to'], `${where}.reply-to`);
  const correlationId = str(w['correlation-id'], `${where}.correlation-id`);
  if (correlationId !== undefined)
    checkTemplate(correlationId, `${where}.correlation-id`, params, ['idempotencyKey']);
  if (correlationId !== undefined && replyTo === undefined)
    throw new Error(`${where}.correlation-id: only a route with reply-to correlates replies`);
  const key = str(w['key'], `${where}.key`);
  if (key !== undefined) checkTemplate(key, `${where}.key`, params, produceNames);
  const overrides: [string, string][] = [];
  const rawOverrides = w['overrides'];
  if (rawOverrides !== undefined) {
    for (const [name, value] of Object.entries(rawOverrides as Record<string, unknown>)) {
      const text = str(value, `${where}.overrides.${name}`) ?? '';
      checkTemplate(text, `${where}.overrides.${name}`, params, produceNames);
      overrides.push([name, text]);
    }
  }
  const acksName = str(w['acks'], `${where}.acks`);
  const acks = acksName === undefined ? undefined : ACKS[acksName];
  const asyncRaw = w['async'] as Record<string, unknown> | undefined;
  const location = asyncRaw === undefined ? undefined : str(asyncRaw['location'], `${where}.async.location`);
  if (location !== undefined) checkTemplate(location, `${where}.async.location`, params, produceNames);
  return {
    capability: 'produce',
    exit: route.exit,
    topic,
    overrides,
    ...(key === undefined ? {} : { key }),
    ...(acks === undefined ? {} : { acks }),
    ...(asyncRaw === undefined ? {} : { async: location === undefined ? {} : { location } }),
    ...(replyTo === undefined ? {} : { replyTo }),
    ...(correlationId === undefined ? {} : { correlationId }),
  };
}

function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

function writeReply(res: ServerResponse, reply: Reply): void {
  res.writeHead(reply.status, {
    ...(reply.contentType === undefined ? {} : { 'Content-Type': reply.contentType }),
    'Content-Length': String(reply.body.length),
  });
  res.end(reply.body);
}

/**
 * The merged document: the latest value per key, as a JSON array. Values are copied out as text
 * because the stream's buffers are views the next read replaces.
 */
class MergedDocument {
  readonly #entries = new Map<string | symbol, string>();
  #bytes = 2;

  add(message: CacheMessage): void {
    const id = message.key === null ? Symbol('no key') : message.key.toString('base64');
    const previous = this.#entries.get(id);
    if (previous !== undefined) {
      this.#bytes -= Buffer.byteLength(previous) + 1;
      this.#entries.delete(id);
    }
    if (message.value === null) return;
    const text = message.value.toString('utf8');
    let json = text;
    try {
      JSON.parse(text);
    } catch {
      // The document must stay JSON whatever producers wrote: such a value goes in as a string.
      json = JSON.stringify(text);
    }
    this.#bytes += Buffer.byteLength(json) + 1;
    if (this.#bytes > MAX_MERGED_BYTES)
      throw new HttpError(
        500,
        `the merged response would exceed ${MAX_MERGED_BYTES} bytes; narrow the request with a more specific route`,
      );
    this.#entries.set(id, json);
  }

  toBuffer(): Buffer {
    return Buffer.from(`[${[...this.#entries.values()].join(',')}]`, 'utf8');
  }
}

/** The one latest matching message, for fetch routes without merge. */
class LatestMessage {
  #value: Buffer | undefined;
  #key: Buffer | null = null;
  #contentType: string | undefined;

  add(message: CacheMessage): void {
    if (message.value === null) {
      if (this.#key === null ? message.key === null : message.key !== null && this.#key.equals(message.key))
        this.#value = undefined;
      return;
    }
    this.#value = Buffer.from(message.value);
    this.#key = message.key === null ? null : Buffer.from(message.key);
    this.#contentType = kafkaHeader(message, 'content-type');
  }

  get value(): Buffer | undefined {
    return this.#value;
  }

  get contentType(): string {
    return this.#contentType ?? 'application/octet-stream';
  }
}

/** The methods a route answers: GET on a request-reply route polls for the reply of an earlier async request. */
function allowedMethods(route: CompiledRoute): readonly string[] {
  if (route.capability === 'fetch') return FETCH_METHODS;
  return route.replyTo === undefined ? PRODUCE_METHODS : REQUEST_REPLY_METHODS;
}

/** A fetch's answer read from the cache, and the progress it was read up to (its ETag). */
interface Snapshot {
  readonly progress: ReadonlyMap<number, bigint>;
  readonly merged: MergedDocument | undefined;
  readonly latest: LatestMessage;
}

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
  readonly #routes = new Map<RouteConfig, CompiledRoute>();
  readonly #idempotencyHeader: string;
  readonly #replyToHeader: string;
  readonly #correlationIdHeader: string;
  /** One per exit and reply topic, shared by every request waiting on that topic. */
  readonly #watchers = new Map<string, ReplyWatcher>();
  #clients = new Map<string, CacheClient>();
  /** Aborts on drain: long waits answer at once instead of holding shutdown. */
  #draining = new AbortController();

  constructor(context: BindingContext) {
    this.#context = context;
    this.config = context.config;
    this.name = context.config.name;
    this.#log = context.logger;
    const idempotency = context.config.options['idempotency'] as Record<string, unknown> | undefined;
    const header = idempotency?.['header'];
    this.#idempotencyHeader = (
      typeof header === 'string' ? header : DEFAULT_IDEMPOTENCY_HEADER
    ).toLowerCase();
    const correlation = context.config.options['correlation'] as Record<string, unknown> | undefined;
    const names = correlation?.['headers'] as Record<string, unknown> | undefined;
    const replyTo = names?.['reply-to'];
    const correlationId = names?.['correlation-id'];
    this.#replyToHeader = typeof replyTo === 'string' ? replyTo : DEFAULT_REPLY_TO_HEADER;
    this.#correlationIdHeader =
      typeof correlationId === 'string' ? correlationId : DEFAULT_CORRELATION_ID_HEADER;
  }

  async start(_signal: AbortSignal): Promise<void> {
    this.#routes.clear();
    this.config.routes.forEach((route, i) => this.#routes.set(route, compileRoute(route, i)));
    this.#clients = lookupCacheClients(this.#context);
    this.#draining = new AbortController();
  }

  async stop(_signal: AbortSignal): Promise<void> {
    this.drain();
    const watchers = [...this.#watchers.values()];
    this.#watchers.clear();
    await Promise.all(watchers.map((w) => w.close()));
  }

  drain(): void {
    this.#draining.abort();
  }

  async handleRequest(req: IncomingMessage, res: ServerResponse, _match: HttpRouteMatch): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const resolved = this.#resolve(method, path);
    if (resolved === undefined) {
      const allowed = this.#methodsOn(path);
      if (allowed.length === 0) throw new HttpError(404, `no route for ${method} ${path}`);
      res.setHeader('Allow', allowed.join(', '));
      throw new HttpError(405, `${path} takes ${allowed.join(', ')}, not ${method}`);
    }
    const { route, params } = resolved;
    const client = this.#clients.get(route.exit);
    if (client === undefined) throw new HttpError(500, `exit ${route.exit} is not started`);
    const allowed = allowedMethods(route);
    if (!allowed.includes(method)) {
      res.setHeader('Allow', allowed.join(', '));
      throw new HttpError(405, `${path} takes ${allowed.join(', ')}, not ${method}`);
    }
    // The client going away ends the work done for it, cache streams included.
    const gone = new AbortController();
    res.once('close', () => gone.abort(CLIENT_GONE));
    if (route.capability === 'fetch') await this.#fetch(req, res, route, client, params, gone.signal);
    else if (method === 'GET') await this.#poll(req, res, route, client, params, gone.signal);
    else await this.#produce(req, res, route, client, params, method, gone.signal);
  }

  /** The route a request takes; HEAD takes the routes of GET unless a route names HEAD itself. */
  #resolve(
    method: string,
    path: string,
  ): { route: CompiledRoute; params: Readonly<Record<string, string>> } | undefined {
    for (const candidate of method === 'HEAD' ? ['HEAD', 'GET'] : [method]) {
      const resolved = resolveRoute(this.config, {
        method: candidate,
        path,
        ':method': candidate,
        ':path': path,
      });
      const route = resolved?.route === undefined ? undefined : this.#routes.get(resolved.route);
      if (resolved !== undefined && route !== undefined) return { route, params: resolved.params };
    }
    return undefined;
  }

  /** The methods some route takes on `path`: a request with another one gets 405, not 404. */
  #methodsOn(path: string): string[] {
    return [...FETCH_METHODS, ...PRODUCE_METHODS].filter((method) => {
      const route = this.#resolve(method, path)?.route;
      return route !== undefined && allowedMethods(route).includes(method);
    });
  }

  async #attach(client: CacheClient, topic: string): Promise<CachedTopic> {
    try {
      return await client.attach(topic);
    } catch (error) {
      throw new HttpError(kafkaErrorStatus(error), `topic ${topic}: ${messageOf(error)}`, { cause: error });
    }
  }

  async #open(
    client: CacheClient,
    topic: string,
    options: Parameters<CacheClient['open']>[1],
  ): Promise<CacheStream> {
    try {
      return await client.open(topic, options);
    } catch (error) {
      throw new HttpError(kafkaErrorStatus(error), `topic ${topic}: ${messageOf(error)}`, { cause: error });
    }
  }

  async #fetch(
    req: IncomingMessage,
    res: ServerResponse,
    route: FetchRoute,
    client: CacheClient,
    params: Readonly<Record<string, string>>,
    gone: AbortSignal,
  ): Promise<void> {
    const filters = buildFilters(route.filters, params);
    const ifNoneMatch = headerText(req.headers['if-none-match']);
    const since = progressFromIfNoneMatch(ifNoneMatch);
    const wait = parsePrefer(req.headers.prefer).wait ?? 0;
    const topic = await this.#attach(client, route.topic);
    try {
      if (since === undefined && parseIfNoneMatch(ifNoneMatch).includes('*')) {
        // Any current representation matches `*`, and a topic always has one (possibly empty).
        res.writeHead(304);
        res.end();
        return;
      }
      // On a compacted topic a filter pinning one key selects that key's newest record: the key
      // index finds it without reading the topic.
      const pinned = topic.compacted ? pinnedKey(filters) : undefined;
      if (pinned !== undefined) {
        await this.#fetchByKey(res, route, topic, pinned, since, wait, gone);
        return;
      }
      if (since !== undefined) {
        const unchanged = await this.#unchangedSince(client, topic, route, filters, since, wait, gone);
        if (unchanged === 'gone') return;
        if (unchanged !== undefined) {
          res.writeHead(304, { ETag: etagOf(unchanged) });
          res.end();
          return;
        }
      }
      const until = Date.now() + (since === undefined && route.merge === undefined ? wait * 1000 : 0);
      for (;;) {
        const snapshot = await this.#readSnapshot(route, client, topic, filters, gone);
        if (snapshot === 'gone') return;
        const remaining = until - Date.now();
        // Nothing matches yet and the client asked to wait: wait for a change, then read again.
        if (snapshot.latest.value === undefined && remaining > 0) {
          const unchanged = await this.#unchangedSince(
            client,
            topic,
            route,
            filters,
            snapshot.progress,
            remaining / 1000,
            gone,
          );
          if (unchanged === 'gone' || gone.aborted) return;
          // Unchanged means the wait ran out, or shutdown cut it short: the 404 stands.
          if (unchanged === undefined) continue;
        }
        this.#writeFetched(res, route, snapshot.progress, snapshot.merged, snapshot.latest);
        return;
      }
    } finally {
      topic.release();
    }
  }

  /**
   * A fetch of one key from the key index, with the same answers, ETags and waits as a stream
   * read: the ETag is the progress a stream reading the topic up to now would have, and a
   * conditional request is unchanged unless a record of the key matching the filter came since.
   */
  async #fetchByKey(
    res: ServerResponse,
    route: FetchRoute,
    topic: CachedTopic,
    pinned: PinnedKey,
    since: Map<number, bigint> | undefined,
    waitSeconds: number,
    gone: AbortSignal,
  ): Promise<void> {
    const until = Date.now() + waitSeconds * 1000;
    const waitSignal = AbortSignal.any([gone, this.#draining.signal]);
    const lookup = async (after: ReadonlyMap<number, bigint> | undefined): Promise<KeyLookup> => {
      const waitMs = until - Date.now();
      try {
        // On the attachment the fetch already holds: attaching again per request costs more than the lookup.
        return await lookupKey(topic, pinned.key, {
          ...(pinned.conditions.length === 0 ? {} : { conditions: pinned.conditions }),
          ...(after === undefined ? {} : { since: after }),
          ...(after === undefined || waitMs <= 0 ? {} : { waitMs, waitSignal }),
          catchUpMs: CATCH_UP_MS,
          signal: gone,
        });
      } catch (error) {
        if (error instanceof NotCaughtUpError) throw this.#notCaughtUp(route.topic);
        throw new HttpError(kafkaErrorStatus(error), `topic ${route.topic}: ${messageOf(error)}`, {
          cause: error,
        });
      }
    };
    let found: KeyLookup;
    try {
      found = await lookup(since);
      // An absent key with a wait asked for: the answer is the key once it appears.
      while (since === undefined && route.merge === undefined && found.message === null) {
        if (Date.now() >= until || waitSignal.aborted) break;
        found = await lookup(found.progress);
      }
    } catch (error) {
      if (gone.aborted) return;
      throw error;
    }
    if (gone.aborted) return;
    if (since !== undefined && !found.changed) {
      res.writeHead(304, { ETag: etagOf(found.progress) });
      res.end();
      return;
    }
    const merged = route.merge === undefined ? undefined : new MergedDocument();
    const latest = new LatestMessage();
    if (found.message !== null) (merged ?? latest).add(found.message);
    this.#writeFetched(res, route, found.progress, merged, latest);
  }

  /**
   * Resumes from the client's ETag: the progress when nothing matching arrived since (up to the
   * head, or up to `wait` seconds past it), undefined when something did. The 304 then carries the
   * newer progress as its ETag, so the client's next conditional request scans only what came after.
   */
  async #unchangedSince(
    client: CacheClient,
    topic: CachedTopic,
    route: FetchRoute,
    filters: ReturnType<typeof buildFilters>,
    since: ReadonlyMap<number, bigint>,
    waitSeconds: number,
    gone: AbortSignal,
  ): Promise<ReadonlyMap<number, bigint> | undefined | 'gone'> {
    const stream = await this.#open(client, route.topic, {
      ...(filters === undefined ? {} : { filters }),
      partitions: since,
      signal: gone,
    });
    const reader = new HeadReader(stream, topic);
    let changed = false;
    try {
      const headBy = Date.now() + CATCH_UP_MS;
      const step = await reader.step(headBy, true, gone);
      if (step.type === 'message') changed = true;
      else if (step.type === 'timeout') throw this.#notCaughtUp(route.topic);
      else if (step.type === 'end') return 'gone';
      else if (waitSeconds > 0) {
        const signal = AbortSignal.any([gone, this.#draining.signal]);
        const waited = await reader.step(Date.now() + waitSeconds * 1000, false, signal);
        if (waited.type === 'message') changed = true;
        if (gone.aborted) return 'gone';
      }
    } finally {
      // A message the stream took as the wait ended counts: the progress includes it.
      if ((await reader.finish()) !== undefined) changed = true;
    }
    return changed ? undefined : reader.progress;
  }

  #notCaughtUp(topic: string): HttpError {
    return new HttpError(
      504,
      `the cache did not catch up with topic ${topic} within ${CATCH_UP_MS / 1000} s; try again later`,
    );
  }

  /** What the topic holds up to now that matches, merged or latest as the route answers it. */
  async #readSnapshot(
    route: FetchRoute,
    client: CacheClient,
    topic: CachedTopic,
    filters: ReturnType<typeof buildFilters>,
    gone: AbortSignal,
  ): Promise<Snapshot | 'gone'> {
    // Historical on every topic: a fetch answers with what the topic holds, not what comes next.
    const stream = await this.#open(client, route.topic, {
      ...(filters === undefined ? {} : { filters }),
      defaultOffset: 'historical',
      signal: gone,
    });
    const reader = new HeadReader(stream, topic);
    const merged = route.merge === undefined ? undefined : new MergedDocument();
    const latest = new LatestMessage();
    const take = (message: CacheMessage): void =>
      merged === undefined ? latest.add(message) : merged.add(message);
    try {
      const by = Date.now() + CATCH_UP_MS;
      for (;;) {
        const step = await reader.step(by, true, gone);
        if (step.type === 'message') take(step.message);
        else if (step.type === 'end') return 'gone';
        else if (step.type === 'timeout') throw this.#notCaughtUp(route.topic);
        else break;
      }
    } finally {
      const late = await reader.finish();
      if (late !== undefined) take(late);
    }
    return { progress: reader.progress, merged, latest };
  }

  /** The 200 of a fetch, or 404 when a fetch without merge found no message. */
  #writeFetched(
    res: ServerResponse,
    route: FetchRoute,
    progress: ReadonlyMap<number, bigint>,
    merged: MergedDocument | undefined,
    latest: LatestMessage,
  ): void {
    const etag = etagOf(progress);
    if (merged !== undefined) {
      const body = merged.toBuffer();
      res.writeHead(200, {
        'Content-Type': route.merge ?? 'application/json',
        'Content-Length': String(body.length),
        ETag: etag,
      });
      res.end(body);
      return;
    }
    const value = latest.value;
    if (value === undefined) throw new HttpError(404, `no message in topic ${route.topic} matches`);
    res.writeHead(200, {
      'Content-Type': latest.contentType,
      'Content-Length': String(value.length),
      ETag: etag,
    });
    res.end(value);
  }

  async #produce(
    req: IncomingMessage,
    res: ServerResponse,
    route: ProduceRoute,
    client: CacheClient,
    params: Readonly<Record<string, string>>,
    method: string,
    gone: AbortSignal,
  ): Promise<void> {
    const idempotencyKey = headerText(req.headers[this.#idempotencyHeader]) ?? randomUUID();
    const correlationId =
      route.correlationId === undefined
        ? randomUUID()
        : expand(route.correlationId, paramsLookup(params, { idempotencyKey }));
    const lookup = paramsLookup(params, { idempotencyKey, correlationId });
    const key = route.key === undefined ? null : expand(route.key, lookup);
    const headers: Record<string, string> = {};
    const contentType = req.headers['content-type'];
    if (contentType !== undefined && method !== 'DELETE') headers['content-type'] = contentType;
    for (const [name, template] of route.overrides) headers[name] = expand(template, lookup);
    // Watching starts before the request goes out: the watcher sees only what comes after it opened.
    const watcher = route.replyTo === undefined ? undefined : await this.#watcher(client, route.replyTo);
    if (route.replyTo !== undefined) {
      headers[this.#replyToHeader] = route.replyTo;
      headers[this.#correlationIdHeader] = correlationId;
    }
    watcher?.book.expect(correlationId);
    const init = { key, headers, ...(route.acks === undefined ? {} : { acks: route.acks }) };

    const stream = await this.#open(client, route.topic, { capabilities: 'produce', signal: gone });
    let partition: number;
    let offset: bigint;
    try {
      if (method === 'DELETE') {
        ({ partition, baseOffset: offset } = await stream.produce({ ...init, value: null }));
      } else {
        let staged;
        try {
          const message = stream.produceStream(init);
          staged = message;
          const announced = headerText(req.headers['content-length']);
          if (announced !== undefined) message.expect(Number(announced));
          // While a chunk waits for staging budget the body is not read, so the socket's buffers
          // fill and TCP pushes back on the client. A client that leaves drops its message; while
          // reading is paused its close goes unseen, so it keeps its place until its turn comes.
          const drop = (): void => message.abort();
          gone.addEventListener('abort', drop, { once: true });
          try {
            for await (const chunk of req) if (!message.write(chunk as Buffer)) await message.ready();
          } finally {
            gone.removeEventListener('abort', drop);
          }
        } catch (error) {
          staged?.abort();
          if (kafkaErrorStatus(error) === 413) {
            // The rest of the body stays unread, so the connection cannot carry another request.
            res.shouldKeepAlive = false;
            throw new HttpError(413, messageOf(error), { cause: error });
          }
          if (gone.aborted) return;
          throw new HttpError(400, `request body did not arrive: ${messageOf(error)}`, { cause: error });
        }
        ({ partition, baseOffset: offset } = await staged.end());
      }
    } catch (error) {
      if (error instanceof HttpError) throw error;
      const status = kafkaErrorStatus(error);
      throw new HttpError(status, `producing to topic ${route.topic} failed: ${messageOf(error)}`, {
        cause: error,
      });
    } finally {
      stream.close();
    }
    this.#log.debug({ topic: route.topic, partition, offset: String(offset) }, 'produced');
    const prefer = parsePrefer(req.headers.prefer);
    const accepted = (): void => {
      const location = route.async?.location;
      res.writeHead(202, location === undefined ? {} : { Location: expand(location, lookup) });
      res.end();
    };
    if (route.async !== undefined && prefer.respondAsync) return accepted();
    if (watcher === undefined) {
      res.writeHead(204);
      res.end();
      return;
    }
    const waitSeconds = prefer.wait ?? REPLY_WAIT_SECONDS;
    const signal = AbortSignal.any([gone, this.#draining.signal]);
    const reply = await watcher.book.wait(correlationId, waitSeconds * 1000, signal);
    if (gone.aborted) return;
    if (reply !== undefined) {
      watcher.book.forget(correlationId);
      return writeReply(res, reply);
    }
    // The reply may still come: a route that can be polled says where, the others give up.
    if (route.async !== undefined) return accepted();
    watcher.book.forget(correlationId);
    throw new HttpError(504, `no reply on topic ${route.replyTo ?? ''} within ${waitSeconds} s`);
  }

  /**
   * GET on the async location: the reply once it has arrived, waiting up to `Prefer: wait`, else
   * 202 again with the same location. Replies to requests this instance produced come from its
   * reply book (bounded in number, bytes and time); any other correlation id is looked for on the
   * reply topic's cache, so a poll may reach any instance, also after a restart.
   */
  async #poll(
    req: IncomingMessage,
    res: ServerResponse,
    route: ProduceRoute,
    client: CacheClient,
    params: Readonly<Record<string, string>>,
    gone: AbortSignal,
  ): Promise<void> {
    const correlationId = params['correlationId'];
    if (route.replyTo === undefined || correlationId === undefined) {
      res.setHeader('Allow', PRODUCE_METHODS.join(', '));
      throw new HttpError(405, 'GET polls for a reply only on a path with {correlationId}');
    }
    const watcher = await this.#watcher(client, route.replyTo);
    const waitSeconds = parsePrefer(req.headers.prefer).wait ?? 0;
    const signal = AbortSignal.any([gone, this.#draining.signal]);
    // A request this instance did not produce (a load balancer sent the poll elsewhere, or this
    // instance restarted) is answered from the reply topic's cache, as any instance can.
    const reply = watcher.book.knows(correlationId)
      ? await watcher.book.wait(correlationId, waitSeconds * 1000, signal)
      : await this.#replyInTopic(client, route.replyTo, correlationId, waitSeconds, signal, gone);
    if (gone.aborted) return;
    if (reply !== undefined) return writeReply(res, reply);
    res.writeHead(202, { Location: req.url ?? '/' });
    res.end();
  }

  /**
   * The first reply with `correlationId` on the reply topic, read from the cache up to now and
   * then waited for up to `waitSeconds`; undefined when none came.
   */
  async #replyInTopic(
    client: CacheClient,
    replyTo: string,
    correlationId: string,
    waitSeconds: number,
    waitSignal: AbortSignal,
    gone: AbortSignal,
  ): Promise<Reply | undefined> {
    const topic = await this.#attach(client, replyTo);
    let reply: Reply | undefined;
    try {
      const stream = await this.#open(client, replyTo, {
        filters: [[{ header: { name: this.#correlationIdHeader, value: Buffer.from(correlationId) } }]],
        defaultOffset: 'historical',
        signal: gone,
      });
      const reader = new HeadReader(stream, topic);
      try {
        const step = await reader.step(Date.now() + CATCH_UP_MS, true, gone);
        if (step.type === 'message') reply = replyOf(step.message);
        else if (step.type === 'timeout') throw this.#notCaughtUp(replyTo);
        else if (step.type === 'head' && waitSeconds > 0) {
          const waited = await reader.step(Date.now() + waitSeconds * 1000, false, waitSignal);
          if (waited.type === 'message') reply = replyOf(waited.message);
        }
      } finally {
        const late = await reader.finish();
        if (reply === undefined && late !== undefined) reply = replyOf(late);
      }
    } finally {
      topic.release();
    }
    return reply;
  }

  async #watcher(client: CacheClient, topic: string): Promise<ReplyWatcher> {
    const id = `${client.name}\0${topic}`;
    let watcher = this.#watchers.get(id);
    if (watcher === undefined) {
      watcher = new ReplyWatcher(client, topic, this.#correlationIdHeader, this.#log);
      this.#watchers.set(id, watcher);
    }
    try {
      await watcher.ready();
      return watcher;
    } catch (error) {
      // The next request tries again rather than inheriting a failure that may have passed.
      if (this.#watchers.get(id) === watcher) this.#watchers.delete(id);
      throw new HttpError(kafkaErrorStatus(error), `reply topic ${topic}: ${messageOf(error)}`, {
        cause: error,
      });
    }
  }
}

export const createHttpKafkaProxyBinding: BindingFactory = (context) => new HttpKafkaProxyBinding(context);
