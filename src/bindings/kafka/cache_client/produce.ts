import { KgateError } from '../../../engine/errors.ts';
import {
  largestSingleRecordValue,
  singleRecordBatchSize,
  type Acks,
  type ProduceRecord,
  type ProduceResult,
} from '../client/index.ts';
import type { StagingAccount, StagingBudget, StagingPressure } from './staging.ts';

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
  /**
   * How long the message may wait for Kafka before it is sent (the partition count, a leader, a
   * producer id); past it, it is not sent and the produce rejects with a KafkaWaitError saying
   * why. See ProduceOptions.maxBlockMs.
   */
  readonly maxBlockMs?: number;
  /**
   * Aborted when whoever asked for the write has gone (an HTTP client that disconnected, a
   * deadline that passed): a message not sent to the broker by then is dropped, never sent later,
   * and the call rejects with the signal's reason. One already sent cannot be recalled.
   */
  readonly signal?: AbortSignal;
}

/** The parts of a staged message known before its value. */
export type StagedMessageInit = Omit<ProduceMessage, 'value'>;

export class MessageTooLargeError extends KgateError {
  readonly limit: number;
  readonly size: number;

  /**
   * `bound` names what sets the limit: the topic's max.message.bytes unless given, and given only
   * for the staging budget, which then is what the code names.
   */
  constructor(topic: string, size: number, limit: number, bound?: string) {
    const what = bound ?? 'its max.message.bytes';
    super(
      bound === undefined ? 'KGATE_MESSAGE_TOO_LARGE' : 'KGATE_STAGING_BUDGET_EXCEEDED',
      `message for topic ${topic} needs at least ${size} bytes, more than ${what} (${limit})`,
    );
    this.limit = limit;
    this.size = size;
  }
}

/** Where a staged message goes and what bounds it. */
export interface StagedMessageTarget {
  readonly topic: string;
  /** The topic's max.message.bytes. */
  readonly limit: number;
  readonly budget: StagingBudget;
  /** How the budget is named in errors. */
  readonly budgetName: string;
  /** Sends the value, with `headers` in place of the init's when given. */
  readonly send: (value: Buffer, headers?: ProduceRecord['headers']) => Promise<ProduceAck>;
  /** Called once the message is settled: acknowledged, failed or dropped. */
  readonly onSettled?: (message: StagedMessage) => void;
  /** Whose share of the budget the message counts against (a client connection), if anyone's. */
  readonly owner?: object;
}

/**
 * A message whose value arrives in pieces (an HTTP body, say) and is produced once complete. The
 * chunks are held as given until end(), so the caller must not reuse their memory; staging more
 * than the topic accepts fails at the write that crosses the limit, before the rest is buffered.
 *
 * Staged bytes count against the binding's staging budget from their write until the broker
 * acknowledges the message (or it fails or is aborted). As with a Node.js writable, write()
 * answers false when the chunk is kept but must wait for budget, and the writer should await
 * ready() before writing more. A value larger than the whole budget is refused like one larger
 * than max.message.bytes. A writer must not wait for budget for one message while holding another
 * of the same binding open: the older one may be what the budget is keeping room for.
 */
export class StagedMessage {
  readonly #target: StagedMessageTarget;
  readonly #init: StagedMessageInit;
  /** The largest value the topic takes with this key and these headers. */
  readonly #maxValue: number;
  readonly #account: StagingAccount;
  #chunks: Buffer[] = [];
  #size = 0;
  #state: 'open' | 'ending' | 'ended' | 'failed' = 'open';

  constructor(init: StagedMessageInit, target: StagedMessageTarget) {
    this.#target = target;
    this.#init = init;
    // The broker checks max.message.bytes against the record batch, not the value: the batch
    // header, the record's varint lengths, its key and its headers count too. kgate produces each
    // staged message in a batch of its own (the client merges batches only within the limit).
    this.#maxValue = largestSingleRecordValue(init, target.limit);
    if (this.#maxValue < 0) {
      this.#state = 'failed';
      throw new MessageTooLargeError(target.topic, singleRecordBatchSize(init, 0), target.limit);
    }
    this.#account = target.budget.open(this.#maxValue, target.owner);
  }

  /**
   * What the writer is under while other writes wait for the staging budget: a value that stops
   * growing for the pressure's idle time then should be given up (abort()), so that the room it
   * holds goes to writers that have data.
   */
  get pressure(): StagingPressure {
    return this.#target.budget.pressure;
  }

  /** The largest value this message may still come to: what the topic and the budget allow. */
  get maxValueBytes(): number {
    return Math.min(this.#maxValue, this.#target.budget.maxBytes);
  }

  /** Value bytes staged so far. */
  get size(): number {
    return this.#size;
  }

  /** True when everything written so far fits the staging budget, false while some waits. */
  get admitted(): boolean {
    return this.#account.pending === 0;
  }

  /**
   * Stages a chunk. False when the chunk is kept but waits for staging budget: await ready()
   * before writing more. Throws, dropping the message, when the value grows past what the topic
   * or the budget can take.
   */
  write(chunk: Buffer | string): boolean {
    if (this.#state !== 'open') throw this.#notOpen();
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    this.#refuseBeyondLimits(this.#size + bytes.length);
    this.#chunks.push(bytes);
    this.#size += bytes.length;
    return this.#target.budget.take(this.#account, bytes.length);
  }

  /**
   * The value's whole size, when known before its chunks (an HTTP Content-Length): a value the
   * topic or the budget cannot take fails here, dropping the message, before any of it is read.
   */
  expect(valueBytes: number): void {
    if (this.#state !== 'open') throw this.#notOpen();
    this.#refuseBeyondLimits(valueBytes);
  }

  /** Drops the message and throws when a value of `valueBytes` passes the topic's limit or the budget. */
  #refuseBeyondLimits(valueBytes: number): void {
    if (valueBytes > this.#maxValue) {
      this.abort();
      const needed = singleRecordBatchSize(this.#init, valueBytes);
      throw new MessageTooLargeError(this.#target.topic, needed, this.#target.limit);
    }
    const budget = this.#target.budget;
    if (valueBytes > budget.maxBytes) {
      this.abort();
      throw new MessageTooLargeError(
        this.#target.topic,
        valueBytes,
        budget.maxBytes,
        this.#target.budgetName,
      );
    }
  }

  /** Resolves when every chunk written so far fits the staging budget; rejects if the message fails. */
  ready(): Promise<void> {
    return this.#target.budget.ready(this.#account);
  }

  /**
   * Produces the staged value (plus `chunk`, if given) once it fits the staging budget, and
   * answers the broker's acknowledgement. `headers`, when given, are the message's headers as
   * they turned out once the value was known (a header derived from the value, say, in place of
   * a placeholder of its size): they must take exactly the room the init's headers took, as the
   * limits were checked against those.
   */
  async end(chunk?: Buffer | string, headers?: ProduceRecord['headers']): Promise<ProduceAck> {
    if (chunk !== undefined) this.write(chunk);
    if (this.#state !== 'open') throw this.#notOpen();
    if (
      headers !== undefined &&
      singleRecordBatchSize({ ...this.#init, headers }, 0) !== singleRecordBatchSize(this.#init, 0)
    ) {
      this.abort();
      throw new Error(`staged message for topic ${this.#target.topic}: its final headers changed its size`);
    }
    this.#state = 'ending';
    const budget = this.#target.budget;
    budget.finish(this.#account);
    await budget.ready(this.#account);
    if (this.#state !== 'ending') throw this.#notOpen();
    this.#state = 'ended';
    const value =
      this.#chunks.length === 1 ? (this.#chunks[0] ?? Buffer.alloc(0)) : Buffer.concat(this.#chunks);
    this.#chunks = [];
    budget.seal(this.#account);
    try {
      return await this.#target.send(value, headers);
    } finally {
      this.#settle();
    }
  }

  /**
   * Drops what was staged and gives its budget back; the message is not produced. A message
   * already sent is not recalled: its budget returns when the broker answers.
   */
  abort(reason?: Error): void {
    if (this.#state === 'ended') return;
    const wasStaging = this.#state === 'open' || this.#state === 'ending';
    this.#state = 'failed';
    this.#chunks = [];
    this.#size = 0;
    if (wasStaging)
      this.#settle(reason ?? new Error(`staged message for topic ${this.#target.topic} was aborted`));
  }

  #settle(reason?: Error): void {
    this.#target.budget.release(this.#account, reason);
    this.#target.onSettled?.(this);
  }

  #notOpen(): Error {
    return new Error(`staged message for topic ${this.#target.topic} is ${this.#state}`);
  }
}
