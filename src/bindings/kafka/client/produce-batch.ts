import {
  type Compression,
  encodeBatch,
  type ProduceRecord,
  RECORD_BATCH_OVERHEAD,
  recordsSizeBound,
} from './protocol/records.ts';

export type Acks = 0 | 1 | -1;

export interface ProduceResult {
  readonly topic: string;
  readonly partition: number;
  /** Offset of the first record of this call; -1 with acks=0. */
  readonly baseOffset: bigint;
  /** One offset per record, in order. */
  readonly offsets: readonly bigint[];
  /** Set when the topic uses LogAppendTime. */
  readonly logAppendTime: number | null;
}

/** One produce() call. */
export interface ProduceCall {
  readonly records: readonly ProduceRecord[];
  readonly acks: Acks;
  readonly compression: Compression;
  /** The largest batch this call may travel in: its topic's max.message.bytes, if known. */
  readonly maxBatchBytes?: number;
  /** Gives the call up while it is not sent (see ProduceOptions.signal). */
  readonly signal?: AbortSignal;
  readonly resolve: (result: ProduceResult) => void;
  readonly reject: (error: Error) => void;
}

export interface ProducerIdentity {
  readonly producerId: bigint;
  readonly epoch: number;
}

/** Where an idempotent batch sits in its producer's stream of one partition. */
export interface BatchSequence extends ProducerIdentity {
  readonly base: number;
}

/** The connection a request is written to; only compared by identity. */
export type RequestChannel = object;

/**
 * Calls are merged into one record batch only up to this many bytes, and only while the batch
 * stays within the max.message.bytes of every call in it: each call was sized to fit its topic's
 * limit on its own, and merging two large ones would make a batch the broker refuses as a whole
 * (MESSAGE_TOO_LARGE), failing calls that were each valid. Half of Kafka's default limit keeps
 * small messages batching by the thousand.
 */
export const MAX_MERGED_BATCH_BYTES = 512 * 1024;

/** Sequence numbers wrap at 2^31 like the broker's: after 2^31 - 1 comes 0. */
export function addSequence(sequence: number, increment: number): number {
  const next = sequence + increment;
  return next > 0x7fffffff ? next - 0x80000000 : next;
}

export function sameIdentity(a: ProducerIdentity | undefined, b: ProducerIdentity | undefined): boolean {
  return a !== undefined && b !== undefined && a.producerId === b.producerId && a.epoch === b.epoch;
}

/**
 * Produce calls for one partition that travel as one record batch. A batch takes calls only until
 * it is first sent; from then on it keeps its calls and, when idempotent, its sequence numbers
 * through every retry (unless an epoch bump rewrites them, see PartitionQueue), which is what lets
 * the broker drop a copy it already wrote.
 */
export class ProduceBatch {
  readonly acks: Acks;
  readonly compression: Compression;
  readonly calls: ProduceCall[] = [];
  /** After this (ms since epoch) its callers are answered, whatever the batch's state. */
  readonly deadline: number;
  #bytes = 0;
  #limit = MAX_MERGED_BATCH_BYTES;
  #records = 0;
  sequence: BatchSequence | undefined;
  /** The attempt out now: the channel it was written to and the sequence it carried. */
  sending: { readonly channel: RequestChannel; readonly sequence: BatchSequence | undefined } | undefined;
  /**
   * Some attempt ended without a definite answer (the connection dropped after the request was
   * written, the broker timed out waiting for replicas): the broker may hold the records.
   */
  maybeWritten = false;
  /**
   * If written, its records are at this offset or after it: the one after the last acknowledged
   * when it was first sent. -1 when nothing of the partition had been acknowledged.
   */
  fromOffset = -1n;
  /** Its callers were answered at the deadline while an attempt was out; it only waits for that. */
  abandoned = false;
  /** The time stamped on records without one: the first send's, kept so every retry is the same batch. */
  #stampedAt: number | undefined;
  #encoded: { readonly sequence: BatchSequence | undefined; readonly bytes: Buffer } | undefined;

  constructor(first: ProduceCall, deadline: number) {
    this.acks = first.acks;
    this.compression = first.compression;
    this.deadline = deadline;
    this.#add(first, recordsSizeBound(first.records));
  }

  get recordCount(): number {
    return this.#records;
  }

  get idempotent(): boolean {
    return this.acks === -1;
  }

  /** The sequence number of its last record. */
  get lastSequence(): number {
    return this.sequence === undefined ? -1 : addSequence(this.sequence.base, this.#records - 1);
  }

  /** Takes `call` into this batch if it fits: same acks and compression, within every limit, not sent yet. */
  tryAdd(call: ProduceCall): boolean {
    if (this.sequence !== undefined || this.#stampedAt !== undefined) return false;
    if (call.acks !== this.acks || call.compression !== this.compression) return false;
    const bytes = recordsSizeBound(call.records);
    const limit = Math.min(this.#limit, call.maxBatchBytes ?? MAX_MERGED_BATCH_BYTES);
    if (RECORD_BATCH_OVERHEAD + this.#bytes + bytes > limit) return false;
    this.#add(call, bytes);
    return true;
  }

  #add(call: ProduceCall, bytes: number): void {
    this.calls.push(call);
    this.#bytes += bytes;
    this.#records += call.records.length;
    if (call.maxBatchBytes !== undefined) this.#limit = Math.min(this.#limit, call.maxBatchBytes);
  }

  /** The record batch as the broker gets it; encoded again only when its sequence changed. */
  encode(now: number): Buffer {
    const cached = this.#encoded;
    if (cached !== undefined && cached.sequence === this.sequence) return cached.bytes;
    this.#stampedAt ??= now;
    const calls = this.calls;
    const records = calls.length === 1 ? (calls[0] as ProduceCall).records : calls.flatMap((c) => c.records);
    const bytes = encodeBatch(records, {
      producerId: this.sequence?.producerId ?? -1n,
      producerEpoch: this.sequence?.epoch ?? -1,
      baseSequence: this.sequence?.base ?? -1,
      compression: this.compression,
      now: this.#stampedAt,
    });
    this.#encoded = { sequence: this.sequence, bytes };
    return bytes;
  }

  /** Answers every call with its records' offsets; `baseOffset` -1 when the broker did not say. */
  resolve(topic: string, partition: number, baseOffset: bigint, logAppendTimeMs: bigint): void {
    let offset = baseOffset;
    const logAppendTime = logAppendTimeMs >= 0n ? Number(logAppendTimeMs) : null;
    for (const call of this.calls.splice(0)) {
      const offsets: bigint[] = [];
      const first = offset;
      for (let i = 0; i < call.records.length; i++) offsets.push(baseOffset < 0n ? -1n : offset++);
      call.resolve({ topic, partition, baseOffset: first, offsets, logAppendTime });
    }
    this.#encoded = undefined;
  }

  /** Not sent yet: calls may still join it or leave it. */
  get unsent(): boolean {
    return this.sequence === undefined && this.#stampedAt === undefined;
  }

  /** Takes `call` out of a batch not sent yet; false when it is not in it. */
  withdraw(call: ProduceCall): boolean {
    const at = this.calls.indexOf(call);
    if (at < 0 || !this.unsent) return false;
    this.calls.splice(at, 1);
    this.#bytes -= recordsSizeBound(call.records);
    this.#records -= call.records.length;
    this.#encoded = undefined;
    return true;
  }

  /** Fails every call with `error`; the batch is answered and holds nothing any more. */
  reject(error: Error): void {
    for (const call of this.calls.splice(0)) call.reject(error);
    this.#encoded = undefined;
  }
}

/** Why a call was given up, as the Error it rejects with. */
export function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new Error(`produce was given up: ${String(reason)}`);
}
