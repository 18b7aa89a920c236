// Messages between the main thread and its worker threads. Everything here crosses a MessagePort,
// so it is structured-cloneable data: bigint and plain objects survive, class instances (errors
// of our own classes, Buffers) do not and are encoded below.
import type { CachedTopicConfig, DefaultOffset } from '../../bindings/kafka/cache_server/api.ts';
import { KafkaClientError, KafkaProtocolError } from '../../bindings/kafka/client/errors.ts';
import type {
  Isolation,
  ProduceOptions,
  ProduceRecord,
  ProduceResult,
} from '../../bindings/kafka/client/index.ts';
import type { MessagePort } from 'node:worker_threads';
import type { LoadedConfig } from '../../config/index.ts';

/** An error as it crosses threads; the kinds north-side bindings map to statuses are kept. */
export interface WireError {
  readonly message: string;
  readonly name: string;
  /** Set for a KafkaClientError. */
  readonly retriable?: boolean;
  /** Set for a KafkaProtocolError: the broker's error code. */
  readonly code?: number;
  readonly cause?: WireError;
}

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
  | { readonly type: 'attach'; readonly id: number; readonly binding: string; readonly topic: string }
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
      readonly options: ProduceOptions | undefined;
    };

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

/** Handed to a worker thread at creation. */
export interface WorkerInit {
  /** 1-based; names the thread in logs. */
  readonly index: number;
  readonly config: LoadedConfig;
  readonly stateDir: string;
  readonly logLevel: string;
  readonly prettyLogs?: boolean;
  readonly startTimeoutMs?: number;
  /** The worker's end of its cache port (transferred). */
  readonly cachePort: MessagePort;
}

/** Main to worker, on the worker's parent port. */
export type ControlRequest =
  | { readonly type: 'reload'; readonly config: LoadedConfig }
  | { readonly type: 'stop'; readonly drainMs: number };

/** Worker to main, on the worker's parent port. */
export type ControlReply =
  | { readonly type: 'started' }
  | { readonly type: 'start-failed'; readonly message: string }
  | { readonly type: 'reloaded'; readonly error?: string }
  | { readonly type: 'stopped' };

export function encodeError(error: unknown, depth = 0): WireError {
  if (!(error instanceof Error)) return { message: String(error), name: 'Error' };
  const cause = depth < 4 && error.cause !== undefined ? encodeError(error.cause, depth + 1) : undefined;
  return {
    message: error.message,
    name: error.name,
    ...(error instanceof KafkaClientError ? { retriable: error.retriable } : {}),
    ...(error instanceof KafkaProtocolError ? { code: error.code } : {}),
    ...(cause === undefined ? {} : { cause }),
  };
}

/** Rebuilds the error classes whose kind decides an HTTP status (see http-kafka/cache-client.ts). */
export function decodeError(wire: WireError): Error {
  const cause = wire.cause === undefined ? undefined : decodeError(wire.cause);
  let error: Error;
  if (wire.code !== undefined) {
    error = new KafkaProtocolError(wire.code, '');
    error.message = wire.message;
    if (cause !== undefined) error.cause = cause;
  } else if (wire.retriable !== undefined) {
    error = new KafkaClientError(wire.message, wire.retriable, cause === undefined ? undefined : { cause });
  } else {
    error = new Error(wire.message, cause === undefined ? undefined : { cause });
  }
  error.name = wire.name;
  return error;
}

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
