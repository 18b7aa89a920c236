import type { Acks, ProduceRecord, ProduceResult } from '../client/index.ts';

/** What a produce call answers: where the message landed. */
export type ProduceAck = ProduceResult & { readonly partition: number };

export interface ProduceMessage {
  readonly key?: Buffer | string | null;
  readonly value: Buffer | string | null;
  readonly headers?: ProduceRecord['headers'];
  /** Omitted: Kafka's default partitioner picks one from the key. */
  readonly partition?: number;
  /** Default -1 (all in-sync replicas). */
  readonly acks?: Acks;
  /** Create time in ms; now when omitted. */
  readonly timestamp?: number;
}

/** The parts of a staged message known before its value. */
export type StagedMessageInit = Omit<ProduceMessage, 'value'>;

export class MessageTooLargeError extends Error {
  readonly limit: number;
  readonly size: number;

  constructor(topic: string, size: number, limit: number) {
    super(
      `message for topic ${topic} needs at least ${size} bytes, more than its max.message.bytes (${limit})`,
    );
    this.name = 'MessageTooLargeError';
    this.limit = limit;
    this.size = size;
  }
}

// The broker checks max.message.bytes against the whole record batch, so the staged value gets
// the limit minus what the batch adds around it: the v2 batch header and the record's own
// fields at their largest varint sizes (length, attributes, timestamp and offset deltas, key and
// value lengths, header count).
const BATCH_OVERHEAD = 61;
const RECORD_OVERHEAD = 5 + 1 + 10 + 5 + 5 + 5 + 5;
const HEADER_OVERHEAD = 10;

function byteLength(data: Buffer | string | null | undefined): number {
  if (data === null || data === undefined) return 0;
  return typeof data === 'string' ? Buffer.byteLength(data, 'utf8') : data.length;
}

/** Bytes a record batch of one record takes besides the value. */
export function envelopeSize(message: StagedMessageInit): number {
  let size = BATCH_OVERHEAD + RECORD_OVERHEAD + byteLength(message.key);
  const headers = message.headers;
  if (headers !== undefined) {
    if (Array.isArray(headers)) {
      for (const h of headers as readonly { key: string; value: Buffer | null }[])
        size += HEADER_OVERHEAD + byteLength(h.key) + byteLength(h.value);
    } else {
      for (const [name, value] of Object.entries(headers as Readonly<Record<string, Buffer | string | null>>))
        size += HEADER_OVERHEAD + byteLength(name) + byteLength(value);
    }
  }
  return size;
}

/**
 * A message whose value arrives in pieces (an HTTP body, say) and is produced once complete. The
 * chunks are held as given until end(), so the caller must not reuse their memory; staging more
 * than the topic accepts fails at the write that crosses the limit, before the rest is buffered.
 */
export class StagedMessage {
  readonly #topic: string;
  readonly #limit: number;
  readonly #envelope: number;
  readonly #send: (value: Buffer) => Promise<ProduceAck>;
  #chunks: Buffer[] = [];
  #size = 0;
  #state: 'open' | 'ended' | 'failed' = 'open';

  constructor(
    topic: string,
    init: StagedMessageInit,
    limit: number,
    send: (value: Buffer) => Promise<ProduceAck>,
  ) {
    this.#topic = topic;
    this.#limit = limit;
    this.#envelope = envelopeSize(init);
    this.#send = send;
    if (this.#envelope > limit) {
      this.#state = 'failed';
      throw new MessageTooLargeError(topic, this.#envelope, limit);
    }
  }

  /** Value bytes staged so far. */
  get size(): number {
    return this.#size;
  }

  write(chunk: Buffer | string): void {
    if (this.#state !== 'open') throw new Error(`staged message for topic ${this.#topic} is ${this.#state}`);
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    const needed = this.#envelope + this.#size + bytes.length;
    if (needed > this.#limit) {
      this.abort();
      throw new MessageTooLargeError(this.#topic, needed, this.#limit);
    }
    this.#chunks.push(bytes);
    this.#size += bytes.length;
  }

  /** Produces the staged value (plus `chunk`, if given) and answers the broker's acknowledgement. */
  end(chunk?: Buffer | string): Promise<ProduceAck> {
    try {
      if (chunk !== undefined) this.write(chunk);
      if (this.#state !== 'open')
        throw new Error(`staged message for topic ${this.#topic} is ${this.#state}`);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    this.#state = 'ended';
    const value =
      this.#chunks.length === 1 ? (this.#chunks[0] ?? Buffer.alloc(0)) : Buffer.concat(this.#chunks);
    this.#chunks = [];
    return this.#send(value);
  }

  /** Drops what was staged; the message is not produced. */
  abort(): void {
    if (this.#state === 'open') this.#state = 'failed';
    this.#chunks = [];
    this.#size = 0;
  }
}
