import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { HeadReader } from '../kafka/cache_client/index.ts';
import { HttpError } from '../north.ts';
import { kafkaErrorCode, messageOf, type CacheClient } from '../proxies/cache-clients.ts';
import type { ContentTypePolicy } from './content-types.ts';
import { attachTopic, headerSafe, notCaughtUp, openStream, type Exchange } from './exchange.ts';
import type { HttpKafkaMetrics } from './metrics.ts';
import type { HttpKafkaOptions } from './options.ts';
import { parsePrefer } from './prefer.ts';
import { ReplyWatcher, replyOf, type Reply } from './replies.ts';
import { PRODUCE_METHODS, type ProduceRoute } from './routes.ts';

/**
 * Answers with a reply: its status, its headers (those kgate has set on the response already
 * win, so a reply cannot take `nosniff` away), its content type as the route allows, and its
 * body. A reply whose status is not a final one is answered 502. 204 and 304 never carry
 * content, so they go out without a body or a Content-Length (RFC 9110 8.6, 15.3.5, 15.4.5),
 * and 205 with an empty one (15.3.6).
 */
export function writeReply(
  res: ServerResponse,
  reply: Reply,
  contentTypes: ContentTypePolicy,
  metrics?: HttpKafkaMetrics,
): void {
  if (reply.invalid !== undefined) {
    metrics?.invalidReply();
    throw new HttpError('KGATE_INVALID_REPLY', reply.invalid);
  }
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of reply.headers) {
    if (res.hasHeader(name)) continue;
    const previous = headers[name];
    headers[name] =
      previous === undefined ? value : Array.isArray(previous) ? [...previous, value] : [previous, value];
  }
  const status = reply.status;
  if (status === 204 || status === 304) {
    res.writeHead(status, headers);
    res.end();
    return;
  }
  if (status === 205) {
    res.writeHead(status, { ...headers, 'Content-Length': '0' });
    res.end();
    return;
  }
  const contentType = contentTypes.serve(reply.contentType);
  res.writeHead(status, {
    ...headers,
    ...(contentType === undefined ? {} : { 'Content-Type': contentType }),
    'Content-Length': String(reply.body.length),
  });
  res.end(reply.body);
}

/**
 * The reply topics of request-reply routes: one watcher per exit and reply topic, shared by every
 * request waiting on that topic, and GET on a route's async location polling for a reply.
 */
export class ReplyTopics {
  readonly #correlationIdHeader: string;
  readonly #log: Logger;
  readonly #metrics: HttpKafkaMetrics | undefined;
  readonly #watchers = new Map<string, ReplyWatcher>();

  constructor(options: HttpKafkaOptions, log: Logger, metrics?: HttpKafkaMetrics) {
    this.#correlationIdHeader = options.correlationIdHeader;
    this.#log = log;
    this.#metrics = metrics;
  }

  /** Answers a request of `route` with its reply (502 for one that cannot be passed on). */
  answer(res: ServerResponse, reply: Reply, route: ProduceRoute): void {
    writeReply(res, reply, route.contentTypes, this.#metrics);
  }

  async close(): Promise<void> {
    const watchers = [...this.#watchers.values()];
    this.#watchers.clear();
    await Promise.all(watchers.map((w) => w.close()));
  }

  /**
   * GET on the async location: the reply once it has arrived, waiting up to `Prefer: wait`, else
   * 202 again with the same location. Replies to requests this instance produced come from its
   * reply book (bounded in number, bytes and time); any other correlation id is looked for on the
   * reply topic's cache, so a poll may reach any instance, also after a restart.
   */
  async poll(x: Exchange, route: ProduceRoute): Promise<void> {
    const { req, res, client, gone } = x;
    const correlationId = x.params['correlationId'];
    if (route.replyTo === undefined || correlationId === undefined) {
      res.setHeader('Allow', PRODUCE_METHODS.join(', '));
      throw new HttpError(
        'KGATE_METHOD_NOT_ALLOWED',
        'GET polls for a reply only on a path with {correlationId}',
      );
    }
    const watcher = await this.watcher(client, route.replyTo, route.kafkaTimeoutMs);
    const waitSeconds = parsePrefer(req.headers.prefer).wait ?? 0;
    const signal = AbortSignal.any([gone, x.draining]);
    // A request this instance did not produce (a load balancer sent the poll elsewhere, or this
    // instance restarted) is answered from the reply topic's cache, as any instance can.
    const reply = watcher.book.knows(correlationId)
      ? await watcher.book.wait(correlationId, waitSeconds * 1000, signal)
      : await this.#replyInTopic(
          client,
          route.replyTo,
          route.kafkaTimeoutMs,
          correlationId,
          waitSeconds,
          signal,
          gone,
        );
    if (gone.aborted) return;
    if (reply !== undefined) return this.answer(res, reply, route);
    res.writeHead(202, { 'Content-Length': '0', Location: headerSafe(req.url ?? '/') });
    res.end();
  }

  /** The reply already on the reply topic of `route` for `correlationId`, if any; waits for none. */
  replied(x: Exchange, route: ProduceRoute, correlationId: string): Promise<Reply | undefined> {
    if (route.replyTo === undefined) return Promise.resolve(undefined);
    return this.#replyInTopic(
      x.client,
      route.replyTo,
      route.kafkaTimeoutMs,
      correlationId,
      0,
      x.gone,
      x.gone,
    );
  }

  /**
   * The first reply with `correlationId` on the reply topic, read from the cache up to now and
   * then waited for up to `waitSeconds`; undefined when none came.
   */
  async #replyInTopic(
    client: CacheClient,
    replyTo: string,
    kafkaTimeoutMs: number,
    correlationId: string,
    waitSeconds: number,
    waitSignal: AbortSignal,
    gone: AbortSignal,
  ): Promise<Reply | undefined> {
    const topic = await attachTopic(client, replyTo, { signal: gone, timeoutMs: kafkaTimeoutMs });
    let reply: Reply | undefined;
    try {
      const stream = await openStream(client, replyTo, {
        filters: [[{ header: { name: this.#correlationIdHeader, value: Buffer.from(correlationId) } }]],
        defaultOffset: 'historical',
        signal: gone,
        timeoutMs: kafkaTimeoutMs,
      });
      const reader = new HeadReader(stream, topic);
      try {
        const step = await reader.step(Date.now() + kafkaTimeoutMs, true, gone);
        if (step.type === 'message') reply = replyOf(step.message, this.#correlationIdHeader);
        else if (step.type === 'timeout') throw notCaughtUp(client, replyTo, kafkaTimeoutMs);
        else if (step.type === 'head' && waitSeconds > 0) {
          const waited = await reader.step(Date.now() + waitSeconds * 1000, false, waitSignal);
          if (waited.type === 'message') reply = replyOf(waited.message, this.#correlationIdHeader);
        }
      } finally {
        const late = await reader.finish();
        if (reply === undefined && late !== undefined) reply = replyOf(late, this.#correlationIdHeader);
      }
    } finally {
      topic.release();
    }
    return reply;
  }

  /**
   * The watcher of `topic` through `client`, ready: opened live and every partition fed. A new
   * watcher waits for Kafka at most `timeoutMs`; requests that come meanwhile share its outcome.
   */
  async watcher(client: CacheClient, topic: string, timeoutMs: number): Promise<ReplyWatcher> {
    const id = `${client.name}\0${topic}`;
    let watcher = this.#watchers.get(id);
    if (watcher === undefined) {
      watcher = new ReplyWatcher(client, topic, this.#correlationIdHeader, this.#log, { timeoutMs });
      this.#watchers.set(id, watcher);
    }
    try {
      await watcher.ready();
      return watcher;
    } catch (error) {
      // The next request tries again rather than inheriting a failure that may have passed.
      if (this.#watchers.get(id) === watcher) this.#watchers.delete(id);
      throw new HttpError(kafkaErrorCode(error), `reply topic ${topic}: ${messageOf(error)}`, {
        cause: error,
      });
    }
  }
}
