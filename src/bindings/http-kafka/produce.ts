import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { causesOf, statusOf } from '../../engine/errors.ts';
import { ProduceOutcomeUnknownError } from '../kafka/cache_client/index.ts';
import type { RecordHeader } from '../kafka/client/index.ts';
import { HttpError } from '../north.ts';
import { kafkaErrorCode, messageOf } from '../proxies/cache-clients.ts';
import { expand, paramsLookup } from '../proxies/templates.ts';
import { headerSafe, headerText, openStream, type Exchange } from './exchange.ts';
import type { HttpKafkaOptions } from './options.ts';
import { parsePrefer } from './prefer.ts';
import type { Reply } from './replies.ts';
import { CorrelationHash, forwardedHeaders } from './request-headers.ts';
import type { ReplyTopics } from './request-reply.ts';
import type { ProduceRoute } from './routes.ts';

/**
 * Headers of the answer to a produce whose message may or may not be in the topic (504,
 * KGATE_PRODUCE_OUTCOME_UNKNOWN): kgate sent it, and no answer from Kafka settled whether it was
 * written before the deadline. They say where to look before sending it again; the request's
 * idempotency key comes back under the binding's idempotency header.
 */
export const OUTCOME_HEADER = 'Kgate-Outcome';
export const PARTITION_HEADER = 'Kgate-Partition';
export const OFFSET_FROM_HEADER = 'Kgate-Offset-From';
export const CORRELATION_ID_HEADER = 'Kgate-Correlation-Id';

/** A Kafka header of a produced record; request header values keep their bytes (latin1). */
function kafkaHeader(name: string, value: string, encoding: BufferEncoding = 'utf8'): RecordHeader {
  return { key: name, value: Buffer.from(value, encoding) };
}

/** The unknown-outcome error along `error`'s cause chain, if any. */
function outcomeUnknown(error: unknown): ProduceOutcomeUnknownError | undefined {
  for (const e of causesOf(error)) if (e instanceof ProduceOutcomeUnknownError) return e;
  return undefined;
}

/**
 * Produce routes: the request body streamed into one message, bounded by the topic's
 * max.message.bytes (checked up front when the body's length is announced) and the staging
 * budget, then 204, or 202 to `Prefer: respond-async`; with `reply-to`, the reply with the
 * request's correlation id, waited for.
 */
export class ProduceHandler {
  readonly #idempotencyHeader: string;
  readonly #replyToHeader: string;
  readonly #correlationIdHeader: string;
  readonly #replies: ReplyTopics;
  readonly #log: Logger;

  constructor(options: HttpKafkaOptions, replies: ReplyTopics, log: Logger) {
    this.#idempotencyHeader = options.idempotencyHeader;
    this.#replyToHeader = options.replyToHeader;
    this.#correlationIdHeader = options.correlationIdHeader;
    this.#replies = replies;
    this.#log = log;
  }

  /** Answers one request on a produce route: POST, PUT, PATCH or DELETE. */
  async handle(x: Exchange, route: ProduceRoute, method: string): Promise<void> {
    const { req, res, client, params, gone } = x;
    const sentKey = headerText(req.headers[this.#idempotencyHeader]);
    const idempotencyKey = sentKey ?? randomUUID();
    // A request-reply produce derives its correlation id from the request, as Zilla does, unless
    // the key or an override needs the id before the body.
    const hash =
      route.replyTo !== undefined && !route.correlationIdFirst
        ? new CorrelationHash(idempotencyKey)
        : undefined;
    let correlationId: string | undefined = hash === undefined ? randomUUID() : undefined;
    const early = paramsLookup(params, { idempotencyKey, correlationId }, x.authorization);
    const key = route.key === undefined ? null : expand(route.key, early);
    hash?.update(key);
    const headers: RecordHeader[] = [];
    if (route.replyTo === undefined) {
      // A produce without a reply passes on only the body's type, as Zilla does.
      const contentType = headerText(req.headers['content-type']);
      if (contentType !== undefined && method !== 'DELETE')
        headers.push(kafkaHeader('content-type', contentType, 'latin1'));
    } else {
      headers.push(...forwardedHeaders(req), kafkaHeader(this.#replyToHeader, route.replyTo));
    }
    for (const [name, template] of route.overrides) headers.push(kafkaHeader(name, expand(template, early)));
    hash?.updateHeaders(headers);
    const correlationHeader = route.correlationIdHeader ?? this.#correlationIdHeader;
    // The id is the last header; until the body is read it is a placeholder of its size.
    if (route.replyTo !== undefined)
      headers.push({
        key: correlationHeader,
        value: hash === undefined ? Buffer.from(correlationId ?? '') : Buffer.alloc(hash.length),
      });
    /** The headers once the correlation id is known, and the id. */
    const finish = (): RecordHeader[] | undefined => {
      if (hash === undefined) return undefined;
      correlationId = hash.digest();
      return [...headers.slice(0, -1), { key: correlationHeader, value: Buffer.from(correlationId) }];
    };
    // Watching starts before the request goes out: the watcher sees only what comes after it opened.
    const watcher =
      route.replyTo === undefined
        ? undefined
        : await this.#replies.watcher(client, route.replyTo, route.kafkaTimeoutMs);
    const prefer = parsePrefer(req.headers.prefer);
    const respondAsync = route.async !== undefined && prefer.respondAsync;
    /**
     * The reply already on the reply topic for this correlation id: a resent request that is the
     * same as one answered before (same idempotency key, headers and body) gets that reply, and is
     * not produced again. Without an idempotency key the id is new, and nothing can be there.
     */
    const replied = async (): Promise<Reply | undefined> => {
      if (
        watcher === undefined ||
        hash === undefined ||
        correlationId === undefined ||
        sentKey === undefined ||
        respondAsync
      )
        return undefined;
      return watcher.book.get(correlationId) ?? (await this.#replies.replied(x, route, correlationId));
    };
    // A client that leaves before its message is sent takes the message with it: it is dropped,
    // never written later (say, into a topic created again while it waited for a leader). So does
    // one whose waits for Kafka before it is sent (a partition count, a leader, a producer id)
    // outlast the route's kafka-timeout.
    const init = {
      key,
      headers,
      signal: gone,
      ...(route.acks === undefined ? {} : { acks: route.acks }),
      maxBlockMs: route.kafkaTimeoutMs,
    };

    const stream = await openStream(client, route.topic, {
      capabilities: 'produce',
      signal: gone,
      timeoutMs: route.kafkaTimeoutMs,
    });
    let partition: number;
    let offset: bigint;
    try {
      if (method === 'DELETE') {
        const final = finish();
        const earlier = await replied();
        if (earlier !== undefined) return this.#replies.answer(res, earlier, route);
        if (correlationId !== undefined) watcher?.book.expect(correlationId);
        const message = { ...init, value: null };
        ({ partition, baseOffset: offset } = await stream.produce(
          final === undefined ? message : { ...message, headers: final },
        ));
      } else {
        let staged;
        try {
          // Counted against the connection's share of the staging budget as well as the budget.
          const message = stream.produceStream(init, x.connection);
          staged = message;
          const announced = headerText(req.headers['content-length']);
          if (announced !== undefined) message.expect(Number(announced));
          // While a chunk waits for staging budget the body is not read, so the socket's buffers
          // fill and TCP pushes back on the client; that wait does not count against the body's
          // timeouts. A client that leaves drops its message; while reading is paused its close
          // goes unseen, so it keeps its place until its turn comes. A body that stops arriving
          // fails with a 408 from the reader, and drops its message likewise: after the server's
          // idle timeout, or sooner while other bodies wait for the room it holds.
          const drop = (): void => message.abort();
          gone.addEventListener('abort', drop, { once: true });
          try {
            for await (const chunk of x.body(message.maxValueBytes, message.pressure)) {
              hash?.update(chunk);
              if (!message.write(chunk)) await message.ready();
            }
          } finally {
            gone.removeEventListener('abort', drop);
          }
        } catch (error) {
          staged?.abort();
          if (error instanceof HttpError) throw error;
          const code = kafkaErrorCode(error);
          if (statusOf(code) === 413) {
            // The rest of the body stays unread, so the connection cannot carry another request.
            res.shouldKeepAlive = false;
            throw new HttpError(code, messageOf(error), { cause: error });
          }
          if (gone.aborted) return;
          throw new HttpError('KGATE_BAD_REQUEST', `request body did not arrive: ${messageOf(error)}`, {
            cause: error,
          });
        }
        const final = finish();
        const earlier = await replied();
        if (earlier !== undefined) {
          staged.abort();
          return this.#replies.answer(res, earlier, route);
        }
        if (correlationId !== undefined) watcher?.book.expect(correlationId);
        ({ partition, baseOffset: offset } = await staged.end(undefined, final));
      }
    } catch (error) {
      if (error instanceof HttpError) throw error;
      // Nobody is left to answer; the message was not sent, or its outcome is the broker's.
      if (gone.aborted) return;
      const unknown = outcomeUnknown(error);
      if (unknown === undefined) {
        throw new HttpError(
          kafkaErrorCode(error),
          `producing to topic ${route.topic} failed: ${messageOf(error)}`,
          { cause: error },
        );
      }
      // Not "failed": the message may be in the topic. Say where, so the client looks before it sends again.
      res.setHeader(OUTCOME_HEADER, 'unknown');
      res.setHeader(this.#idempotencyHeader, headerSafe(idempotencyKey));
      if (route.replyTo !== undefined && correlationId !== undefined)
        res.setHeader(CORRELATION_ID_HEADER, headerSafe(correlationId));
      res.setHeader(PARTITION_HEADER, String(unknown.partition));
      if (unknown.fromOffset >= 0n) res.setHeader(OFFSET_FROM_HEADER, String(unknown.fromOffset));
      const where =
        unknown.fromOffset >= 0n
          ? `partition ${unknown.partition} from offset ${unknown.fromOffset}`
          : `partition ${unknown.partition}`;
      throw new HttpError(
        'KGATE_PRODUCE_OUTCOME_UNKNOWN',
        `the message was sent to topic ${route.topic}, but whether Kafka wrote it is not known: look for it in ${where} before sending it again (${messageOf(error)})`,
        { cause: error },
      );
    } finally {
      stream.close();
    }
    this.#log.debug({ topic: route.topic, partition, offset: String(offset) }, 'produced');
    const lookup = paramsLookup(params, { idempotencyKey, correlationId });
    const accepted = (): void => {
      const location = route.async?.location;
      res.writeHead(202, {
        'Content-Length': '0',
        ...(location === undefined ? {} : { Location: headerSafe(expand(location, lookup)) }),
      });
      res.end();
    };
    if (respondAsync) return accepted();
    if (watcher === undefined || correlationId === undefined) {
      res.writeHead(204);
      res.end();
      return;
    }
    // Without `Prefer: wait` the request waits for its reply as long as its client does, as in
    // Zilla; it ends sooner only when kgate drains.
    const waitMs = prefer.wait === undefined ? Infinity : prefer.wait * 1000;
    const signal = AbortSignal.any([gone, x.draining]);
    const reply = await watcher.book.wait(correlationId, waitMs, signal);
    if (gone.aborted) return;
    if (reply !== undefined) {
      watcher.book.forget(correlationId);
      return this.#replies.answer(res, reply, route);
    }
    // The reply may still come: a route that can be polled says where, the others give up.
    if (route.async !== undefined) return accepted();
    watcher.book.forget(correlationId);
    throw new HttpError(
      'KGATE_REPLY_TIMEOUT',
      prefer.wait === undefined
        ? `no reply on topic ${route.replyTo ?? ''} before kgate began to stop`
        : `no reply on topic ${route.replyTo ?? ''} within ${prefer.wait} s`,
    );
  }
}
