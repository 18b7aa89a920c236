import { isUtf8 } from 'node:buffer';
import type { Logger } from 'pino';
import type { BindingConfig, RouteConfig } from '../../config/index.ts';
import type { Binding, BindingContext, BindingFactory } from '../../engine/binding.ts';
import { errorCodeOf } from '../../engine/errors.ts';
import type { Filter } from '../kafka/cache_client/index.ts';
import { HttpError, type SseEvent, type SseHandler, type SseRequest, type SseStream } from '../north.ts';
import { pathRoutes, type PathRoutes } from '../path-conditions.ts';
import type { CacheMessage, CacheStream } from '../kafka/cache_client/index.ts';
import { lookupCacheClients, messageOf, type CacheClient } from '../proxies/cache-clients.ts';
import { buildFilters, filterTemplates, type FilterTemplate } from '../proxies/filter-templates.ts';
import { resolveGuarded } from '../proxies/guarded.ts';
import { kafkaTimeoutMs } from '../proxies/kafka-timeout.ts';
import { capturedParams } from '../proxies/templates.ts';
import { compileTopic, type TopicTemplate } from '../proxies/topic-template.ts';
import { formatData, formatField } from '../sse/framing.ts';
import { compileEventId, type EventIdFormat } from './event-id.ts';
import { sseKafkaMetrics, type SseKafkaMetrics } from './metrics.ts';

/**
 * Reconnect delay asked of a browser whose stream ended in an error: EventSource reconnects on
 * its own, and a missing topic should not turn into a reconnect every few seconds per tab.
 */
export const ERROR_RETRY_MS = 10_000;

/**
 * The event that ends a stream whose topic was deleted (or deleted and created again). It carries
 * an empty `id:`, which clears the browser's last event id: positions in the deleted topic mean
 * nothing in one created again under its name, so the reconnect starts afresh rather than at the
 * old offsets.
 */
export const TOPIC_DELETED_EVENT = 'topic-deleted';

// Messages taken from the cache per pull, and bytes of event text per write: large enough that
// a busy stream pays one write for many events, small enough that a write's text stays near the
// socket's high-water mark (64 KiB), which is what a stream may have unsent before it stops pulling.
// A pull stops at that many bytes of keys and values too, so a stream holds one batch's worth of
// messages, not 256 large ones, and a value that size or larger goes out as an event of its own,
// a slice at a time (SseStream.sendSliced), its bytes shared rather than copied into a frame.
const BATCH_MESSAGES = 256;
const WRITE_BYTES = 64 * 1024;

export interface SseRoute {
  readonly exit: string;
  readonly topic: TopicTemplate;
  readonly filters: readonly FilterTemplate[];
  readonly eventId: EventIdFormat;
  /** How long a stream waits for the topic from Kafka before it ends with an error event. */
  readonly kafkaTimeoutMs: number;
}

/** What a request resolved to: its route, cache client, and the topic and filters it reads. */
interface Admitted {
  readonly route: SseRoute;
  readonly client: CacheClient;
  readonly topic: string;
  readonly filters: Filter[] | undefined;
}

export function compileRoute(route: RouteConfig, index: number): SseRoute {
  const where = `routes[${index}].with`;
  const w = route.with ?? {};
  const topic = w['topic'];
  if (typeof topic !== 'string' || topic === '') throw new Error(`${where}.topic is required`);
  const params = capturedParams(route);
  const event = w['event'] as Record<string, unknown> | undefined;
  const id = event?.['id'];
  if (id !== undefined && typeof id !== 'string') throw new Error(`${where}.event.id must be a string`);
  let eventId: EventIdFormat;
  try {
    eventId = compileEventId(id);
  } catch (error) {
    throw new Error(`${where}.${messageOf(error)}`, { cause: error });
  }
  return {
    exit: route.exit,
    topic: compileTopic(topic, `${where}.topic`, params),
    filters: filterTemplates(w['filters'], where, params),
    eventId,
    kafkaTimeoutMs: kafkaTimeoutMs(w['kafka-timeout'], `${where}.kafka-timeout`),
  };
}

/**
 * One Kafka message as one event. The id carries the stream progress after the message, so the
 * Last-Event-ID a browser reconnects with resumes right after the last event it saw: nothing lost,
 * nothing repeated, and any instance can serve the reconnect. A tombstone becomes a `delete`
 * event whose data is the key.
 */
export function toEvent(message: CacheMessage, eventId: EventIdFormat): SseEvent {
  const id = eventId.format(message.progress, message.key);
  if (message.value === null) return { id, type: 'delete', data: message.key?.toString('utf8') ?? '' };
  return { id, data: message.value.toString('utf8') };
}

// The `data:` lines of a value, kept as long as the value's buffer lives. Streams reading the same
// records share their buffers (the cache hands one decoded copy to every reader at the head), so a
// message fanned out to many connections is decoded and framed once.
const dataLines = new WeakMap<Buffer, string>();

function dataLinesOf(value: Buffer): string {
  let lines = dataLines.get(value);
  if (lines === undefined) {
    lines = formatData(value.toString('utf8'));
    dataLines.set(value, lines);
  }
  return lines;
}

/** toEvent(message) in event-stream framing, as formatEvent would write it. */
export function frameOf(message: CacheMessage, eventId: EventIdFormat): string {
  // Ids from a compiled format hold no line break (the template is checked, the rest is base64).
  const id = formatField('id', eventId.format(message.progress, message.key));
  if (message.value === null)
    return `${id}event:delete\n${formatData(message.key?.toString('utf8') ?? '')}\n`;
  return `${id}${dataLinesOf(message.value)}\n`;
}

const DATA_PREFIX = Buffer.from('data:');
// A reader drops one space after the colon: a value that starts with one needs another before it.
const SPACED_DATA_PREFIX = Buffer.from('data: ');
const LINE_END = Buffer.from('\n');
const EVENT_END = Buffer.from('\n\n');

// The `data:` lines of large values that cannot be sent as they are, kept as long as the value's
// buffer lives, so that streams sending the same record share one copy.
const framedData = new WeakMap<Buffer, Buffer>();

/**
 * A large message as the pieces of its event: the id line, then the data. A value of one line of
 * valid UTF-8 (the usual JSON document) is its own data line, sent from the cache's buffer as it
 * is; any other is framed once per value buffer, as frameOf would frame it.
 */
export function largeEventPieces(message: CacheMessage, eventId: EventIdFormat): (string | Buffer)[] {
  const id = formatField('id', eventId.format(message.progress, message.key));
  const value = message.value;
  if (value === null) return [`${id}event:delete\n${formatData(message.key?.toString('utf8') ?? '')}\n`];
  if (value.indexOf(0x0a) < 0 && value.indexOf(0x0d) < 0 && isUtf8(value))
    return [id, value[0] === 0x20 ? SPACED_DATA_PREFIX : DATA_PREFIX, value, EVENT_END];
  let data = framedData.get(value);
  if (data === undefined) {
    data = Buffer.from(formatData(value.toString('utf8')), 'utf8');
    framedData.set(value, data);
  }
  return [id, data, LINE_END];
}

function isLarge(message: CacheMessage): boolean {
  return message.value !== null && message.value.length >= WRITE_BYTES;
}

/**
 * Writes `frames` and, when the client is behind (more than the socket's high-water mark unsent),
 * waits until it has caught up. False once the stream is closed.
 */
async function deliver(
  stream: SseStream,
  frames: string,
  count: number,
  metrics: SseKafkaMetrics,
): Promise<boolean> {
  const caughtUp = stream.sendFramed(frames, count);
  metrics.delivered(count);
  if (caughtUp) return true;
  if (stream.closed.aborted) return false;
  // Pulling stops until the browser has taken what is queued: the cache, not memory, holds what
  // it has not read yet (and on a compacted topic conflation skips what was superseded meanwhile).
  metrics.paused();
  await stream.drained();
  return !stream.closed.aborted;
}

/** The `sse-kafka proxy` binding: serves event streams from `kafka cache_client` streams. */
export class SseKafkaProxyBinding implements Binding, SseHandler {
  readonly name: string;
  readonly config: BindingConfig;
  readonly #context: BindingContext;
  readonly #log: Logger;
  readonly #routes = new Map<RouteConfig, SseRoute>();
  readonly #matchers: PathRoutes;
  readonly #streams = new Set<CacheStream>();
  readonly #metrics: SseKafkaMetrics;
  /** What admit() resolved, for the handleEventStream() of the same request. */
  readonly #admitted = new WeakMap<SseRequest, Admitted>();
  #clients = new Map<string, CacheClient>();

  constructor(context: BindingContext) {
    this.#context = context;
    this.config = context.config;
    this.name = context.config.name;
    this.#log = context.logger;
    this.#matchers = pathRoutes(context.config);
    this.#metrics = sseKafkaMetrics(context.metrics, this.name);
  }

  async start(_signal: AbortSignal): Promise<void> {
    this.#routes.clear();
    this.config.routes.forEach((route, i) => this.#routes.set(route, compileRoute(route, i)));
    this.#clients = lookupCacheClients(this.#context);
  }

  async stop(_signal: AbortSignal): Promise<void> {
    for (const stream of [...this.#streams]) stream.close();
  }

  /**
   * Refuses, before the stream's head goes out, a request no route takes (404, as Zilla answers
   * it, rather than a stream a browser would reconnect to forever), one whose path makes an
   * illegal topic name, one that a guarded route turns away (401 or 403), and one whose
   * credentials lack what the route's templates take from them.
   */
  admit(request: SseRequest): void {
    this.#admitted.set(request, this.#resolve(request));
  }

  #resolve(request: SseRequest): Admitted {
    const resolved = resolveGuarded(
      this.#matchers,
      { method: 'GET', path: request.path },
      request.authorization,
      `event stream at ${request.path}`,
    );
    const route = resolved?.route === undefined ? undefined : this.#routes.get(resolved.route);
    const client = route === undefined ? undefined : this.#clients.get(route.exit);
    if (resolved === undefined || route === undefined || client === undefined)
      throw new HttpError('KGATE_NOT_FOUND', `no event stream at ${request.path}`);
    return {
      route,
      client,
      topic: route.topic.resolve(resolved.params, request.authorization),
      filters: buildFilters(route.filters, resolved.params, request.authorization),
    };
  }

  async handleEventStream(request: SseRequest, stream: SseStream): Promise<void> {
    const fail = (message: string): void => {
      this.#log.debug({ path: request.path, message }, 'event stream failed');
      stream.send({ type: 'error', data: message });
      stream.close(ERROR_RETRY_MS);
    };
    let admitted = this.#admitted.get(request);
    if (admitted === undefined) {
      // A server in front that did not ask admit() first has sent its head already.
      try {
        admitted = this.#resolve(request);
      } catch (error) {
        fail(messageOf(error));
        return;
      }
    }
    const { route, client, topic, filters } = admitted;

    let partitions: Map<number, bigint> | undefined;
    if (request.lastEventId !== undefined && request.lastEventId !== '') {
      partitions = route.eventId.progressOf(request.lastEventId);
      // An id this route did not make (the config changed, say) cannot be resumed from; starting
      // afresh beats refusing, which would lock the browser into reconnecting with it forever.
      if (partitions === undefined)
        this.#log.debug({ path: request.path, lastEventId: request.lastEventId }, 'unknown Last-Event-ID');
    }

    let cache: CacheStream;
    try {
      cache = await client.open(topic, {
        ...(filters === undefined ? {} : { filters }),
        ...(partitions === undefined || partitions.size === 0 ? {} : { partitions }),
        signal: stream.closed,
        timeoutMs: route.kafkaTimeoutMs,
      });
    } catch (error) {
      if (!stream.closed.aborted) fail(`topic ${topic}: ${messageOf(error)}`);
      return;
    }
    this.#streams.add(cache);
    const ended = this.#metrics.streamOpened();
    const onClose = (): void => cache.close();
    stream.closed.addEventListener('abort', onClose, { once: true });
    if (stream.closed.aborted) cache.close();
    try {
      await this.#pump(cache, stream, route.eventId);
      // A stream that ends while the client is still there was closed by this binding stopping.
      if (!stream.closed.aborted) stream.close();
    } catch (error) {
      if (stream.closed.aborted) {
        // The client left first; nothing to tell it.
      } else if (errorCodeOf(error) === 'KGATE_TOPIC_NOT_FOUND') {
        this.#log.debug({ path: request.path, topic }, 'event stream ended: topic deleted');
        stream.send({ id: '', type: TOPIC_DELETED_EVENT, data: messageOf(error) });
        stream.close(ERROR_RETRY_MS);
      } else fail(`topic ${topic}: ${messageOf(error)}`);
    } finally {
      stream.closed.removeEventListener('abort', onClose);
      cache.close();
      this.#streams.delete(cache);
      ended();
    }
  }

  /** Moves messages from the cache stream to the event stream, every ready one in few writes. */
  async #pump(cache: CacheStream, stream: SseStream, eventId: EventIdFormat): Promise<void> {
    for (;;) {
      const batch = await cache.nextBatch(BATCH_MESSAGES, WRITE_BYTES);
      if (batch.length === 0) return;
      let frames = '';
      let count = 0;
      for (const message of batch) {
        if (isLarge(message)) {
          if (count > 0 && !(await deliver(stream, frames, count, this.#metrics))) return;
          frames = '';
          count = 0;
          // The write waits for the client slice by slice: when it returns, the client has
          // taken all but the socket's buffer of it, and the next pull may go ahead.
          if (!(await stream.sendSliced(largeEventPieces(message, eventId)))) return;
          this.#metrics.delivered(1);
          continue;
        }
        frames += frameOf(message, eventId);
        count++;
        if (frames.length >= WRITE_BYTES) {
          if (!(await deliver(stream, frames, count, this.#metrics))) return;
          frames = '';
          count = 0;
        }
      }
      if (count > 0 && !(await deliver(stream, frames, count, this.#metrics))) return;
    }
  }
}

export const createSseKafkaProxyBinding: BindingFactory = (context) => new SseKafkaProxyBinding(context);
