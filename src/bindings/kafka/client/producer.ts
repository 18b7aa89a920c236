import type { BrokerConnection } from './connection.ts';
import { ConnectionError, KafkaProtocolError } from './errors.ts';
import type { ProduceActivity } from './fetcher.ts';
import { Api } from './apis/index.ts';
import type { ProducePartitionResponse, ProduceTopicData } from './apis/produce.ts';
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
  readonly topic: string;
  readonly partition: number;
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

/**
 * Calls that travel as one record batch. Once a unit has a sequence number it keeps it, with the
 * same calls, through every retry: that is what lets the broker drop a duplicate when a response
 * was lost but the write was not.
 */
export interface ProduceUnit {
  readonly topic: string;
  readonly partition: number;
  readonly calls: ProduceCall[];
  readonly acks: Acks;
  readonly compression: Compression;
  sequence: { readonly producerId: bigint; readonly epoch: number; readonly base: number } | undefined;
  attempts: number;
  /** After this (ms since epoch) a failure is final. */
  readonly deadline: number;
}

export interface ProducerIdentity {
  readonly producerId: bigint;
  readonly epoch: number;
}

export interface ProducerHooks {
  connect(): Promise<BrokerConnection>;
  /** The idempotent producer id, for acks=-1. */
  identity(): Promise<ProducerIdentity>;
  /** Next base sequence for a partition; advances it by `count`. */
  takeSequence(topic: string, partition: number, identity: ProducerIdentity, count: number): number;
  /** A unit failed; the client decides whether and where to send it again. */
  failed(unit: ProduceUnit, error: Error): void;
  readonly timeoutMs: number;
}

/**
 * Calls are merged into one record batch only up to this many bytes, and only while the batch
 * stays within the max.message.bytes of every call in it: each call was sized to fit its topic's
 * limit on its own, and merging two large ones would make a batch the broker refuses as a whole
 * (MESSAGE_TOO_LARGE), failing calls that were each valid. Half of Kafka's default limit keeps
 * small messages batching by the thousand.
 */
const MAX_MERGED_BATCH_BYTES = 512 * 1024;

/** A bound of the batch a unit's records would make, and the largest batch all its calls allow. */
interface UnitSize {
  readonly bytes: number;
  readonly limit: number;
}

function unitSize(unit: ProduceUnit): UnitSize {
  let bytes = 0;
  let limit = MAX_MERGED_BATCH_BYTES;
  for (const call of unit.calls) {
    bytes += recordsSizeBound(call.records);
    if (call.maxBatchBytes !== undefined) limit = Math.min(limit, call.maxBatchBytes);
  }
  return { bytes, limit };
}

function count(unit: ProduceUnit): number {
  let n = 0;
  for (const call of unit.calls) n += call.records.length;
  return n;
}

/**
 * Produces to one broker. Calls made while a Produce request is outstanding are merged into the
 * next request: all calls for one partition become one record batch (brokers accept exactly one
 * batch per partition per request), and all partitions share the request.
 */
export class BrokerProducer implements ProduceActivity {
  readonly #hooks: ProducerHooks;
  #queue: ProduceUnit[] = [];
  #running = false;
  #lastActiveAt = Date.now();

  constructor(hooks: ProducerHooks) {
    this.#hooks = hooks;
  }

  /** Work is queued or a Produce request awaits its answer: the broker's fetches should not wait. */
  get busy(): boolean {
    return this.#running || this.#queue.length > 0;
  }

  get lastActiveAt(): number {
    return this.#lastActiveAt;
  }

  send(unit: ProduceUnit): void {
    this.#lastActiveAt = Date.now();
    this.#queue.push(unit);
    if (!this.#running) {
      this.#running = true;
      setImmediate(() => void this.#loop());
    }
  }

  async #loop(): Promise<void> {
    try {
      while (this.#queue.length > 0) await this.#round();
    } finally {
      this.#running = false;
      this.#lastActiveAt = Date.now();
    }
  }

  /** Picks this round's units: one per partition, all with the first unit's acks. */
  #take(): ProduceUnit[] {
    this.#queue = this.#queue.filter(keepsCalls);
    const first = this.#queue[0];
    if (first === undefined) return [];
    const units = new Map<string, ProduceUnit>();
    const sizes = new Map<string, UnitSize>();
    const later: ProduceUnit[] = [];
    for (const unit of this.#queue) {
      const key = `${unit.topic}:${unit.partition}`;
      const current = units.get(key);
      if (unit.acks !== first.acks) later.push(unit);
      else if (current === undefined) {
        units.set(key, unit);
        sizes.set(key, unitSize(unit));
      } else {
        const held = sizes.get(key) ?? unitSize(current);
        const added = unitSize(unit);
        const merged = { bytes: held.bytes + added.bytes, limit: Math.min(held.limit, added.limit) };
        if (
          current.sequence === undefined &&
          unit.sequence === undefined &&
          current.compression === unit.compression &&
          RECORD_BATCH_OVERHEAD + merged.bytes <= merged.limit &&
          later.every((l) => `${l.topic}:${l.partition}` !== key)
        ) {
          // Merge only fresh calls, and only while nothing of this partition was held back, so order holds.
          current.calls.push(...unit.calls);
          sizes.set(key, merged);
        } else later.push(unit);
      }
    }
    this.#queue = later;
    return [...units.values()];
  }

  async #round(): Promise<void> {
    const units = this.#take();
    const acks = units[0]?.acks;
    if (acks === undefined) return;
    let connection: BrokerConnection;
    let responses: ProducePartitionResponse[] | undefined;
    try {
      const idempotent = acks === -1;
      const identity = idempotent ? await this.#hooks.identity() : undefined;
      const byTopic = new Map<
        string,
        ProduceTopicData & { partitions: { partition: number; batch: Buffer }[] }
      >();
      const now = Date.now();
      for (const unit of units) {
        if (identity !== undefined && unit.sequence === undefined) {
          const base = this.#hooks.takeSequence(unit.topic, unit.partition, identity, count(unit));
          unit.sequence = { producerId: identity.producerId, epoch: identity.epoch, base };
        }
        const records =
          unit.calls.length === 1
            ? (unit.calls[0] as ProduceCall).records
            : unit.calls.flatMap((c) => c.records);
        const batch = encodeBatch(records, {
          producerId: unit.sequence?.producerId ?? -1n,
          producerEpoch: unit.sequence?.epoch ?? -1,
          baseSequence: unit.sequence?.base ?? -1,
          compression: unit.compression,
          now,
        });
        let topic = byTopic.get(unit.topic);
        if (topic === undefined) {
          topic = { topic: unit.topic, partitions: [] };
          byTopic.set(unit.topic, topic);
        }
        topic.partitions.push({ partition: unit.partition, batch });
      }
      connection = await this.#hooks.connect();
      const topics = [...byTopic.values()];
      responses = await connection.request(
        Api.Produce,
        { acks, timeoutMs: this.#hooks.timeoutMs, topics },
        { noResponse: acks === 0, extraTimeoutMs: this.#hooks.timeoutMs },
      );
    } catch (error) {
      const failure = error instanceof Error ? error : new Error(String(error));
      for (const unit of units) this.#hooks.failed(unit, failure);
      return;
    }
    if (acks === 0 || responses === undefined) {
      for (const unit of units) settle(unit, -1n, -1n);
      return;
    }
    const byKey = new Map<string, ProducePartitionResponse>();
    for (const r of responses) byKey.set(`${r.topic}:${r.partition}`, r);
    for (const unit of units) {
      const r = byKey.get(`${unit.topic}:${unit.partition}`);
      if (r === undefined) {
        this.#hooks.failed(
          unit,
          new ConnectionError(
            `broker ${connection.address} left ${unit.topic}-${unit.partition} out of its Produce response`,
          ),
        );
      } else if (r.errorCode !== 0 && r.errorCode !== 46) {
        const detail =
          r.errorMessage ??
          r.recordErrors.map((e) => `record ${e.batchIndex}: ${e.message ?? ''}`).join('; ');
        this.#hooks.failed(
          unit,
          new KafkaProtocolError(
            r.errorCode,
            `Produce ${unit.topic}-${unit.partition} to ${connection.address}`,
            detail || null,
          ),
        );
      } else {
        // DUPLICATE_SEQUENCE_NUMBER (46): the batch was written before; the broker did not say where.
        settle(unit, r.errorCode === 46 ? -1n : r.baseOffset, r.logAppendTimeMs);
      }
    }
  }
}

/**
 * Drops the calls of a unit not sent yet whose callers gave up, rejecting each with its signal's
 * reason; false when none is left. A unit that has a sequence number was sent: it keeps its calls.
 */
function keepsCalls(unit: ProduceUnit): boolean {
  if (unit.sequence !== undefined) return true;
  const kept = unit.calls.filter((call) => {
    if (call.signal?.aborted !== true) return true;
    call.reject(abortReason(call.signal));
    return false;
  });
  if (kept.length === unit.calls.length) return true;
  unit.calls.splice(0, unit.calls.length, ...kept);
  return kept.length > 0;
}

/** Why a call was given up, as the Error it rejects with. */
export function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new Error(`produce was given up: ${String(reason)}`);
}

function settle(unit: ProduceUnit, baseOffset: bigint, logAppendTimeMs: bigint): void {
  let offset = baseOffset;
  const logAppendTime = logAppendTimeMs >= 0n ? Number(logAppendTimeMs) : null;
  for (const call of unit.calls) {
    const offsets: bigint[] = [];
    const first = offset;
    for (let i = 0; i < call.records.length; i++) offsets.push(baseOffset < 0n ? -1n : offset++);
    call.resolve({ topic: unit.topic, partition: unit.partition, baseOffset: first, offsets, logAppendTime });
  }
}
