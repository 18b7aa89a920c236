import type { Logger } from 'pino';
import { resolveRoute, type BindingConfig, type RouteConfig } from '../../config/index.ts';
import type { Binding, BindingContext, BindingFactory } from '../../engine/binding.ts';
import type { SseEvent, SseHandler, SseRequest, SseStream } from '../north.ts';
import type { CacheMessage, CacheStream } from '../kafka/cache_client/index.ts';
import { lookupCacheClients, messageOf, type CacheClient } from '../http-kafka/cache-client.ts';
import {
  buildFilters,
  capturedParams,
  filterTemplates,
  type FilterTemplate,
} from '../http-kafka/templates.ts';
import { compileEventId, type EventIdFormat } from './event-id.ts';

/**
 * Reconnect delay asked of a browser whose stream ended in an error: EventSource reconnects on
 * its own, and a missing topic should not turn into a reconnect every few seconds per tab.
 */
export const ERROR_RETRY_MS = 10_000;

interface SseRoute {
  readonly exit: string;
  readonly topic: string;
  readonly filters: readonly FilterTemplate[];
  readonly eventId: EventIdFormat;
}

function compileRoute(route: RouteConfig, index: number): SseRoute {
  const where = `routes[${index}].with`;
  const w = route.with ?? {};
  const topic = w['topic'];
  if (typeof topic !== 'string' || topic === '') throw new Error(`${where}.topic is required`);
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
    topic,
    filters: filterTemplates(w['filters'], where, capturedParams(route)),
    eventId,
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

/** The `sse-kafka proxy` binding: serves event streams from `kafka cache_client` streams. */
export class SseKafkaProxyBinding implements Binding, SseHandler {
  readonly name: string;
  readonly config: BindingConfig;
  readonly #context: BindingContext;
  readonly #log: Logger;
  readonly #routes = new Map<RouteConfig, SseRoute>();
  readonly #streams = new Set<CacheStream>();
  #clients = new Map<string, CacheClient>();

  constructor(context: BindingContext) {
    this.#context = context;
    this.config = context.config;
    this.name = context.config.name;
    this.#log = context.logger;
  }

  async start(_signal: AbortSignal): Promise<void> {
    this.#routes.clear();
    this.config.routes.forEach((route, i) => this.#routes.set(route, compileRoute(route, i)));
    this.#clients = lookupCacheClients(this.#context);
  }

  async stop(_signal: AbortSignal): Promise<void> {
    for (const stream of [...this.#streams]) stream.close();
  }

  async handleEventStream(request: SseRequest, stream: SseStream): Promise<void> {
    const fail = (message: string): void => {
      this.#log.debug({ path: request.path, message }, 'event stream failed');
      stream.send({ type: 'error', data: message });
      stream.close(ERROR_RETRY_MS);
    };
    const resolved = resolveRoute(this.config, { path: request.path, method: 'GET' });
    const route = resolved?.route === undefined ? undefined : this.#routes.get(resolved.route);
    const client = route === undefined ? undefined : this.#clients.get(route.exit);
    if (resolved === undefined || route === undefined || client === undefined) {
      fail(`no event stream at ${request.path}`);
      return;
    }

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
      const filters = buildFilters(route.filters, resolved.params);
      cache = await client.open(route.topic, {
        ...(filters === undefined ? {} : { filters }),
        ...(partitions === undefined || partitions.size === 0 ? {} : { partitions }),
        signal: stream.closed,
      });
    } catch (error) {
      if (!stream.closed.aborted) fail(`topic ${route.topic}: ${messageOf(error)}`);
      return;
    }
    this.#streams.add(cache);
    const onClose = (): void => cache.close();
    stream.closed.addEventListener('abort', onClose, { once: true });
    if (stream.closed.aborted) cache.close();
    try {
      for (;;) {
        const next = await cache.next();
        if (next.done === true) break;
        if (!stream.send(toEvent(next.value, route.eventId))) {
          if (stream.closed.aborted) break;
          // Pulling stops until the browser has taken what is queued: the cache, not memory,
          // holds what it has not read yet.
          await stream.drained();
        }
      }
      // A stream that ends while the client is still there was closed by this binding stopping.
      if (!stream.closed.aborted) stream.close();
    } catch (error) {
      if (!stream.closed.aborted) fail(`topic ${route.topic}: ${messageOf(error)}`);
    } finally {
      stream.closed.removeEventListener('abort', onClose);
      cache.close();
      this.#streams.delete(cache);
    }
  }
}

export const createSseKafkaProxyBinding: BindingFactory = (context) => new SseKafkaProxyBinding(context);
