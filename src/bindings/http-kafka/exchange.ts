import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Authorization } from '../../guards/index.ts';
import type { AttachOptions, CachedTopic, CacheStream } from '../kafka/cache_client/index.ts';
import { HttpError, type HttpRouteMatch } from '../north.ts';
import { kafkaErrorCode, messageOf, type CacheClient } from '../proxies/cache-clients.ts';

// One request on its way through the proxy, and the cache calls its handlers make for it, a
// failure answered as the HTTP error it stands for.

export interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The cache_client exit of the route the request took. */
  readonly client: CacheClient;
  /** Path parameters the route captured. */
  readonly params: Readonly<Record<string, string>>;
  /** Aborts when the response closes: the work done for the client, cache streams included, ends. */
  readonly gone: AbortSignal;
  /** Aborts when the binding drains: long waits answer at once instead of holding shutdown. */
  readonly draining: AbortSignal;
  /** The request body, chunk by chunk, within the http server's body timeouts. */
  readonly body: HttpRouteMatch['bodyChunks'];
  /** The connection the request came on, whose share of the staging budget its body takes. */
  readonly connection: object;
  /** What the http server made of the request's credentials, for `${guarded[...]}` templates. */
  readonly authorization?: Authorization;
}

export function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

/**
 * `value` with every character a header cannot carry (controls, CR and LF among them, and
 * anything past ASCII) percent-encoded as UTF-8, for a header built from a template over request
 * values, such as `Location`.
 */
export function headerSafe(value: string): string {
  return value.replace(/[^\t\x20-\x7e]+/gu, (run) =>
    [...Buffer.from(run, 'utf8')]
      .map((byte) => `%${byte.toString(16).toUpperCase().padStart(2, '0')}`)
      .join(''),
  );
}

/** An attachment to `topic`, waiting for its metadata within `options` (the route's kafka-timeout). */
export async function attachTopic(
  client: CacheClient,
  topic: string,
  options: AttachOptions,
): Promise<CachedTopic> {
  try {
    return await client.attach(topic, options);
  } catch (error) {
    throw new HttpError(kafkaErrorCode(error), `topic ${topic}: ${messageOf(error)}`, { cause: error });
  }
}

export async function openStream(
  client: CacheClient,
  topic: string,
  options: Parameters<CacheClient['open']>[1],
): Promise<CacheStream> {
  try {
    return await client.open(topic, options);
  } catch (error) {
    throw new HttpError(kafkaErrorCode(error), `topic ${topic}: ${messageOf(error)}`, { cause: error });
  }
}

/**
 * The answer when the cache did not catch up with `topic` within `waitedMs`: 503 naming the
 * broker's failure when no broker answers (the cache cannot catch up with a Kafka it cannot
 * reach), else 504.
 */
export function notCaughtUp(client: CacheClient, topic: string, waitedMs: number): HttpError {
  const within = `within ${waitedMs / 1000} s`;
  const unreachable = client.unreachable?.(topic);
  if (unreachable !== undefined)
    return new HttpError(
      'KGATE_KAFKA_UNAVAILABLE',
      `the cache could not catch up with topic ${topic} ${within}: ${unreachable}`,
    );
  return new HttpError(
    'KGATE_NOT_CAUGHT_UP',
    `the cache did not catch up with topic ${topic} ${within}; try again later`,
  );
}

/** A 503 at a bound of the binding: the client may try again in a second. */
export function overloaded(res: ServerResponse, message: string): HttpError {
  res.setHeader('Retry-After', '1');
  return new HttpError('KGATE_OVERLOADED', message);
}
