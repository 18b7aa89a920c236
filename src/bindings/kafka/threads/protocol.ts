// Messages on a worker's cache port, between its cache_server stand-ins and the main thread's
// cache_servers. Everything here crosses a MessagePort, so it is structured-cloneable data: bigint
// and plain objects survive, class instances (errors of our own classes, Buffers) do not and are
// encoded (errors in wire-error.ts, records below).
import type { CachedTopicConfig, DefaultOffset } from '../cache_server/api.ts';
import type { Isolation, ProduceOptions, ProduceRecord, ProduceResult } from '../client/index.ts';
import type { WireError } from './wire-error.ts';

/** What a worker needs to serve an attachment without asking again. */
export interface TopicSnapshot {
  readonly config: CachedTopicConfig;
  readonly compacted: boolean;
  readonly defaultOffset: DefaultOffset;
  readonly partitions: readonly number[];
  readonly ready: readonly number[];
}

/** A TopicChange as sent: `appended` is coalesced per partition (only the latest counts). */
export type WireChange =
  | { readonly type: 'ready'; readonly partition: number }
  | { readonly type: 'partitions'; readonly partitions: readonly number[] }
  | { readonly type: 'truncated'; readonly partition: number; readonly logStartOffset: bigint }
  | { readonly type: 'error'; readonly error: WireError };

/** Worker to main, on the cache port. `id` of attach names the subscription from then on. */
export type CacheRequest =
  | {
      readonly type: 'attach';
      readonly id: number;
      readonly binding: string;
      readonly topic: string;
      /** How long the main thread may wait for the topic's metadata (AttachOptions.timeoutMs). */
      readonly timeoutMs?: number;
    }
  | { readonly type: 'release'; readonly id: number }
  | {
      /** The broker's end offsets of partitions of the topic of subscription `subscription`. */
      readonly type: 'offsets';
      readonly id: number;
      readonly subscription: number;
      readonly partitions: readonly number[];
      readonly isolation: Isolation;
    }
  | {
      readonly type: 'produce';
      readonly id: number;
      readonly binding: string;
      readonly topic: string;
      readonly partition: number | undefined;
      readonly records: readonly ProduceRecord[];
      /**
       * Without `signal`, which cannot be cloned: `produce-abort` stands for it. `maxBlockMs`
       * crosses, and bounds the wait on the main thread.
       */
      readonly options: Omit<ProduceOptions, 'signal'> | undefined;
    }
  /** The worker's caller of produce `id` gave up: a call not sent yet is dropped. */
  | { readonly type: 'produce-abort'; readonly id: number; readonly reason: WireError };

/** Main to worker, on the cache port. */
export type CacheReply =
  | { readonly type: 'attached'; readonly id: number; readonly snapshot: TopicSnapshot }
  | {
      readonly type: 'produced';
      readonly id: number;
      readonly result: ProduceResult & { readonly partition: number };
    }
  | { readonly type: 'offsets'; readonly id: number; readonly offsets: ReadonlyMap<number, bigint> }
  | { readonly type: 'failed'; readonly id: number; readonly error: WireError }
  | {
      readonly type: 'changes';
      /** The subscription (the id of its attach). */
      readonly id: number;
      /** In the order they happened. */
      readonly changes: readonly WireChange[];
      /** Partition -> next offset: the last `appended` of each partition since the previous batch. */
      readonly appended: ReadonlyMap<number, bigint>;
      /** Present when the topic's config was refreshed since the previous batch. */
      readonly config?: CachedTopicConfig;
    };

/** Buffers arrive as plain Uint8Arrays; views on the same memory make them Buffers again. */
export function reviveRecords(records: readonly ProduceRecord[]): ProduceRecord[] {
  return records.map((r) => {
    const headers = r.headers;
    let revivedHeaders: ProduceRecord['headers'];
    if (headers === undefined) revivedHeaders = undefined;
    else if (Array.isArray(headers))
      revivedHeaders = headers.map((h: { key: string; value: Buffer | null }) => ({
        key: h.key,
        value: asBuffer(h.value),
      }));
    else {
      const out: Record<string, Buffer | string | null> = {};
      for (const [k, v] of Object.entries(headers as Readonly<Record<string, Buffer | string | null>>))
        out[k] = asBuffer(v);
      revivedHeaders = out;
    }
    return {
      value: asBuffer(r.value),
      ...(r.key === undefined ? {} : { key: asBuffer(r.key) }),
      ...(revivedHeaders === undefined ? {} : { headers: revivedHeaders }),
      ...(r.timestamp === undefined ? {} : { timestamp: r.timestamp }),
    };
  });
}

function asBuffer<T extends Buffer | string | null>(value: T): T;
function asBuffer(value: Buffer | string | null): Buffer | string | null {
  if (value === null || typeof value === 'string' || Buffer.isBuffer(value)) return value;
  const bytes: Uint8Array = value;
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
