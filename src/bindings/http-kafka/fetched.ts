import type { ServerResponse } from 'node:http';
import type { CacheMessage } from '../kafka/cache_client/index.ts';
import { HttpError } from '../north.ts';
import { writeBody } from '../response-body.ts';
import { etagOf } from './etag.ts';
import type { PartialStatus } from './metrics.ts';
import { kafkaHeader } from './replies.ts';
import type { FetchRoute } from './routes.ts';
import type { Snapshot } from './snapshots.ts';

// What a fetch answers with: the body it builds from the messages read, and the response.

/** Largest merged document a fetch builds in memory; past it the request fails with a clear error. */
export const MAX_MERGED_BYTES = 16 * 1024 * 1024;

/**
 * The merged document: the latest value per key, as a JSON array. Values are copied out as text
 * because the stream's buffers are views the next read replaces.
 */
export class MergedDocument {
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
        'KGATE_RESPONSE_TOO_LARGE',
        `the merged response would exceed ${MAX_MERGED_BYTES} bytes; narrow the request with a more specific route`,
      );
    this.#entries.set(id, json);
  }

  toBuffer(): Buffer {
    return Buffer.from(`[${[...this.#entries.values()].join(',')}]`, 'utf8');
  }
}

/** The one latest matching message, for fetch routes without merge. */
export class LatestMessage {
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

  /** The message's `content-type` header as stored; the route decides what is answered. */
  get contentType(): string | undefined {
    return this.#contentType;
  }
}

/**
 * What a read found, as the answer a fetch gives: the merged document, or the latest message.
 * `evicted` (see evictedHeads) names the partitions the read covered only from where the cache's
 * byte budget left them.
 */
export function snapshotOf(
  route: FetchRoute,
  progress: ReadonlyMap<number, bigint>,
  merged: MergedDocument | undefined,
  latest: LatestMessage,
  evicted: ReadonlyMap<number, bigint> = new Map<number, bigint>(),
): Snapshot {
  const partial = evicted.size === 0 ? {} : { evicted };
  if (merged !== undefined) return { progress, body: merged.toBuffer(), ...partial };
  const storedContentType = latest.contentType;
  return storedContentType === undefined
    ? { progress, body: latest.value, ...partial }
    : { progress, body: latest.value, storedContentType, ...partial };
}

/**
 * Names the partitions an answer read from a cache missing evicted records, each with the offset
 * the answer covers it from (`0:1200, 3:977`): Kafka may hold records of it before that offset.
 */
export const PARTIAL_HEADER = 'Kgate-Partial';

function partialValue(evicted: ReadonlyMap<number, bigint>): string {
  return [...evicted]
    .sort(([a], [b]) => a - b)
    .map(([partition, from]) => `${partition}:${from}`)
    .join(', ');
}

/**
 * The 200 of a fetch, its body written as the connection drains (the snapshot may be shared by
 * many responses, and is never copied for one); 404 when a fetch without merge found no message.
 * When the read missed records the cache's byte budget evicted while Kafka may still hold them
 * (`snapshot.evicted`), a merged document misses the keys whose latest records were among them
 * and is answered 203 with PARTIAL_HEADER, and no match is no answer (507 with the header), as
 * the match may be among them. A match without merge is answered 200 as it is: eviction takes
 * the oldest records, never one newer than a record it keeps. `partial` hears of 203 and 507.
 */
export async function writeSnapshot(
  res: ServerResponse,
  route: FetchRoute,
  snapshot: Snapshot,
  gone: AbortSignal,
  partial?: (status: PartialStatus) => void,
): Promise<void> {
  const body = snapshot.body;
  const evicted = snapshot.evicted ?? new Map<number, bigint>();
  if (body === undefined && evicted.size > 0) {
    const heads = partialValue(evicted);
    res.setHeader(PARTIAL_HEADER, heads);
    partial?.(507);
    throw new HttpError(
      'KGATE_CACHE_EVICTED',
      `no message in the cache of topic ${route.topic} matches, but the cache's byte budget evicted records Kafka may still hold (partition:offset the cache holds from: ${heads}); raise --cache-max-bytes or read the topic from Kafka`,
    );
  }
  if (body === undefined)
    throw new HttpError('KGATE_NOT_FOUND', `no message in topic ${route.topic} matches`);
  const whole = route.merge === undefined || evicted.size === 0;
  const contentType = route.merge ?? route.contentTypes.serve(snapshot.storedContentType);
  res.writeHead(whole ? 200 : 203, {
    ...(contentType === undefined ? {} : { 'Content-Type': contentType }),
    'Content-Length': String(body.length),
    ETag: etagOf(snapshot.progress),
    ...(whole ? {} : { [PARTIAL_HEADER]: partialValue(evicted) }),
  });
  if (!whole) partial?.(203);
  await writeBody(res, body, gone);
}
