import { errorCodeOf } from '../../../engine/errors.ts';
import {
  isRetriable,
  KafkaClientError,
  type KafkaProtocolError,
  ProduceOutcomeUnknownError,
} from './errors.ts';
import {
  abortReason,
  type Acks,
  addSequence,
  type ProduceCall,
  ProduceBatch,
  type ProducerIdentity,
  type RequestChannel,
  sameIdentity,
} from './produce-batch.ts';

/**
 * Batches of one partition a producer may have sent and not yet seen answered. The broker keeps the
 * last five batches of each producer per partition to recognise a retry of one it already wrote,
 * so an idempotent producer never has more than five in flight (max.in.flight.requests.per.connection).
 */
export const MAX_IN_FLIGHT_PER_PARTITION = 5;

/** How one attempt to send a batch ended. */
export type AttemptEnd =
  | { readonly kind: 'acked'; readonly baseOffset: bigint; readonly logAppendTimeMs: bigint }
  | { readonly kind: 'rejected'; readonly error: KafkaProtocolError; readonly logStartOffset: bigint }
  /** No answer: the connection failed or closed. `written` when the request had reached the socket. */
  | { readonly kind: 'lost'; readonly error: Error; readonly written: boolean };

/** What the partition needs after an attempt ended. */
export interface AttemptVerdict {
  /** Its leader may have moved or its connection is gone: look the leader up again before sending. */
  readonly reroute: boolean;
}

/** Why the partition's sequences must start again: the broker lost them, or a sequence was given up. */
export type SequenceReset = 'epoch' | 'producer-id';

/** Calls answered when their deadline passed. */
export interface Expired {
  /** Calls whose records were certainly not written. */
  readonly failed: number;
  /** Calls whose records may have been written. */
  readonly unknown: number;
}

/**
 * Broker errors after which the records may be in the log all the same: a timeout or a lost quorum
 * while waiting for replicas (the leader had appended them), a leader that changed during that
 * wait, a failing disk. Every other error a broker answers for a partition comes before the append.
 */
const MAY_HAVE_WRITTEN = new Set<number>([
  6, // NOT_LEADER_OR_FOLLOWER: also the answer when leadership moves while acks=all waits
  7, // REQUEST_TIMED_OUT
  13, // NETWORK_EXCEPTION
  20, // NOT_ENOUGH_REPLICAS_AFTER_APPEND
  56, // KAFKA_STORAGE_ERROR
]);

const OUT_OF_ORDER_SEQUENCE_NUMBER = 45;
const INVALID_PRODUCER_EPOCH = 47;
const INVALID_PRODUCER_ID_MAPPING = 49;
const UNKNOWN_PRODUCER_ID = 59;
const PRODUCER_FENCED = 90;

/**
 * The produce calls of one partition, in order, and the idempotent producer's state for it (the
 * rules of Kafka's own producer: KIP-98, KIP-360).
 *
 * Calls join the newest batch not yet sent while it has room, so callers at the same time share
 * one record batch. A batch gets its sequence numbers when first sent and keeps them through its
 * retries, so the broker recognises one it already wrote and answers it as written. Batches go out
 * in order: a batch is sent only once every earlier batch of the partition is answered or on its
 * way over the same connection, so a retry always precedes the batches after it, and after a lost
 * connection the batches it carried are sent again in their order. At most five are in flight.
 *
 * Sequences restart (a new epoch, sequences from 0, locally, as an idempotent producer may) only
 * when the broker no longer knows the producer's sequence (OUT_OF_ORDER_SEQUENCE_NUMBER for the
 * batch right after the last one acknowledged, UNKNOWN_PRODUCER_ID), when a batch was certainly
 * refused, or when a batch given up with its outcome unknown leaves a gap once nothing is in
 * flight; never while an earlier batch may still be written under the old sequence. Sending waits
 * while a restart is pending, and new batches wait while a batch's outcome is unresolved.
 */
export class PartitionQueue {
  readonly topic: string;
  readonly partition: number;
  readonly #backoff: (failures: number) => number;
  /** Batches never sent, oldest first; only the last takes more calls. */
  readonly #waiting: ProduceBatch[] = [];
  /** Batches sent at least once and not answered, in sequence order. */
  readonly #inFlight: ProduceBatch[] = [];
  /** The producer id and epoch the partition's sequences belong to. */
  #identity: ProducerIdentity | undefined;
  #nextSequence = 0;
  #lastAckedSequence = -1;
  #lastAckedOffset = -1n;
  /** The sequence after a batch given up with its outcome unknown, until resolved. */
  #unresolved: number | undefined;
  #reset: SequenceReset | undefined;
  #resetReason = '';
  #retryAt = 0;
  #failures = 0;
  /** Why the last attempt failed, for the answer to calls that give up. */
  lastError: Error | undefined;

  constructor(topic: string, partition: number, backoff: (failures: number) => number) {
    this.topic = topic;
    this.partition = partition;
    this.#backoff = backoff;
  }

  get empty(): boolean {
    return this.#waiting.length === 0 && this.#inFlight.length === 0;
  }

  /** Batches in flight (sent, not answered), abandoned ones included. */
  get inFlight(): number {
    return this.#inFlight.length;
  }

  /** Until when (ms since epoch) the partition backs off after a failure. */
  get retryAt(): number {
    return this.#retryAt;
  }

  /** Set when the partition's sequences must restart before it sends again. */
  get resetWanted(): SequenceReset | undefined {
    return this.#reset;
  }

  get resetReason(): string {
    return this.#resetReason;
  }

  /** The producer id and epoch of the partition's sequences. */
  get identity(): ProducerIdentity | undefined {
    return this.#identity;
  }

  get nextSequence(): number {
    return this.#nextSequence;
  }

  /** Queues a call: in the newest unsent batch if it fits there, else in a batch of its own. */
  add(call: ProduceCall, deadline: number): void {
    const last = this.#waiting.at(-1);
    if (last?.tryAdd(call) === true) return;
    this.#waiting.push(new ProduceBatch(call, deadline));
  }

  /** Some batch may be sendable at `now`, over some connection. */
  hasWork(now: number): boolean {
    if (now < this.#retryAt || this.#reset !== undefined) return false;
    return this.#inFlight.some((b) => b.sending === undefined) || this.#waiting.length > 0;
  }

  /** The next batch waits for a producer id. */
  wantsIdentity(): boolean {
    return this.#waiting[0]?.idempotent === true;
  }

  /**
   * The batch the partition would send next over `channel`, without taking it: the first in-flight
   * batch needing a resend once every batch before it is out on `channel`, else the next new one.
   */
  peek(
    channel: RequestChannel,
    identity: ProducerIdentity | undefined,
    now: number,
  ): ProduceBatch | undefined {
    for (const batch of this.#inFlight) {
      if (batch.sending !== undefined) {
        // Only the same connection keeps a later batch behind this one at the broker.
        if (batch.sending.channel !== channel) return undefined;
        continue;
      }
      if (now < this.#retryAt) return undefined;
      if (batch.idempotent && this.#reset !== undefined) return undefined;
      return batch;
    }
    const next = this.#waiting[0];
    if (next === undefined || now < this.#retryAt) return undefined;
    if (this.#inFlight.length >= MAX_IN_FLIGHT_PER_PARTITION) return undefined;
    if (next.idempotent) {
      if (identity === undefined || this.#reset !== undefined || this.#unresolved !== undefined)
        return undefined;
      // A new epoch starts only once the batches of the old one are answered.
      if (!sameIdentity(this.#identity, identity) && this.#inFlight.some((b) => b.idempotent))
        return undefined;
    }
    return next;
  }

  /** Takes the batch `peek` names when it has these acks: it is out on `channel` until `ended`. */
  take(
    channel: RequestChannel,
    identity: ProducerIdentity | undefined,
    now: number,
    acks: Acks,
  ): ProduceBatch | undefined {
    const batch = this.peek(channel, identity, now);
    if (batch === undefined || batch.acks !== acks) return undefined;
    if (batch === this.#waiting[0]) {
      this.#waiting.shift();
      if (batch.idempotent && identity !== undefined) {
        if (!sameIdentity(this.#identity, identity)) {
          this.#identity = identity;
          this.#nextSequence = 0;
          this.#lastAckedSequence = -1;
        }
        batch.sequence = { ...identity, base: this.#nextSequence };
        this.#nextSequence = addSequence(this.#nextSequence, batch.recordCount);
      }
      batch.fromOffset = this.#lastAckedOffset < 0n ? -1n : this.#lastAckedOffset + 1n;
      this.#inFlight.push(batch);
    }
    batch.sending = { channel, sequence: batch.sequence };
    return batch;
  }

  /** Takes in how an attempt ended: answers the calls, or keeps the batch for its retry. */
  ended(batch: ProduceBatch, end: AttemptEnd, now: number): AttemptVerdict {
    const attempt = batch.sending;
    batch.sending = undefined;
    // False when an epoch bump gave the batch new sequences while this attempt carried the old ones.
    const current = attempt !== undefined && attempt.sequence === batch.sequence;
    if (end.kind === 'acked') {
      this.#acked(batch, end.baseOffset, end.logAppendTimeMs, current);
      return { reroute: false };
    }
    if (end.kind === 'lost') {
      if (end.written) batch.maybeWritten = true;
      if (batch.abandoned) this.#drop(batch);
      else if (!isRetriable(end.error)) this.#fail(batch, end.error);
      else this.#failed(end.error, now);
      return { reroute: true };
    }
    const error = end.error;
    const code = error.brokerCode;
    if (MAY_HAVE_WRITTEN.has(code)) batch.maybeWritten = true;
    if (batch.abandoned) {
      this.#drop(batch);
      return { reroute: error.staleMetadata };
    }
    if (batch.idempotent && batch.sequence !== undefined) {
      if (code === OUT_OF_ORDER_SEQUENCE_NUMBER) {
        this.#outOfOrder(batch, error, current, now);
        return { reroute: false };
      }
      if (code === UNKNOWN_PRODUCER_ID) {
        // Without the log start offset the broker could not say more: just send it again.
        if (current && end.logStartOffset >= 0n) this.#wantReset('epoch', 'UNKNOWN_PRODUCER_ID');
        this.#failed(error, now);
        return { reroute: false };
      }
      if (
        code === INVALID_PRODUCER_EPOCH ||
        code === PRODUCER_FENCED ||
        code === INVALID_PRODUCER_ID_MAPPING
      ) {
        // The broker refused the producer id itself (the batch was not written): take a new one.
        this.#wantReset('producer-id', error.errorName);
        this.#failed(error, now);
        return { reroute: false };
      }
    }
    if (!error.retriable) {
      this.#fail(batch, error);
      return { reroute: false };
    }
    this.#failed(error, now);
    return { reroute: error.staleMetadata };
  }

  /**
   * OUT_OF_ORDER_SEQUENCE_NUMBER: the broker's last sequence is not the one before this batch.
   * While an earlier batch is unanswered that is only the broker seeing this one first, and a
   * resend behind the earlier one settles it. For the batch right after the last one acknowledged
   * (or after one given up) the broker has lost the producer's sequence: start a new epoch.
   */
  #outOfOrder(batch: ProduceBatch, error: KafkaProtocolError, current: boolean, now: number): void {
    this.lastError = error;
    if (!current) return;
    const base = batch.sequence?.base ?? 0;
    const next = base === addSequence(this.#lastAckedSequence, 1);
    if (this.#unresolved === undefined && !next) return;
    if (this.#unresolved === undefined || base === this.#unresolved) {
      this.#wantReset('epoch', 'OUT_OF_ORDER_SEQUENCE_NUMBER');
      this.#failed(error, now);
    }
  }

  #acked(batch: ProduceBatch, baseOffset: bigint, logAppendTimeMs: bigint, current: boolean): void {
    this.#remove(batch);
    if (batch.idempotent && current && sameIdentity(batch.sequence, this.#identity))
      this.#lastAckedSequence = batch.lastSequence;
    else if (batch.idempotent && !current && sameIdentity(batch.sequence, this.#identity))
      // Written by an attempt of the old epoch after the restart had given it sequences of the new
      // one: the batches behind it count on sequences the broker will never see, so they restart.
      this.#wantReset('epoch', 'a batch of the previous epoch was written after the restart');
    if (baseOffset >= 0n) {
      const last = baseOffset + BigInt(batch.recordCount - 1);
      if (last > this.#lastAckedOffset) this.#lastAckedOffset = last;
    }
    this.#failures = 0;
    this.#retryAt = 0;
    batch.resolve(this.topic, this.partition, baseOffset, logAppendTimeMs);
    this.#resolveSequences();
  }

  /** A retriable failure: the partition backs off, once however many of its batches it hit. */
  #failed(error: Error, now: number): void {
    this.noteFailure(error, now);
  }

  /**
   * A failure that kept the partition from sending (no leader known, no connection): it backs
   * off, and `error` is what its calls are told if they give up.
   */
  noteFailure(error: Error, now: number): void {
    this.lastError = error;
    if (now >= this.#retryAt) this.#retryAt = now + this.#backoff(this.#failures++);
  }

  /** The batch is refused for good: its calls get `error`, or the unknown-outcome answer if an earlier attempt may have written it. */
  #fail(batch: ProduceBatch, error: Error): void {
    this.lastError = error;
    this.#remove(batch);
    batch.reject(batch.maybeWritten ? this.#unknown(batch, error) : error);
    this.#gaveUp(batch);
  }

  /** An abandoned batch's last attempt ended without an acknowledgement. */
  #drop(batch: ProduceBatch): void {
    this.#remove(batch);
    this.#gaveUp(batch);
  }

  /**
   * A batch with sequences left the partition unacknowledged. If it may be written, later
   * sequences resolve it (an acknowledged later batch means it was); if it certainly was not,
   * its sequences are a gap the broker will not pass, so they restart.
   */
  #gaveUp(batch: ProduceBatch): void {
    if (!batch.idempotent || batch.sequence === undefined) return;
    if (batch.maybeWritten) {
      const after = addSequence(batch.lastSequence, 1);
      this.#unresolved = this.#unresolved === undefined ? after : Math.max(this.#unresolved, after);
    } else this.#wantReset('epoch', 'a batch was refused');
    this.#resolveSequences();
  }

  /** Once nothing idempotent is in flight, an unresolved partition is either whole or restarts. */
  #resolveSequences(): void {
    if (this.#unresolved === undefined || this.#inFlight.some((b) => b.idempotent)) return;
    if (addSequence(this.#lastAckedSequence, 1) === this.#nextSequence) this.#unresolved = undefined;
    else this.#wantReset('epoch', 'a batch given up may not have been written');
  }

  #wantReset(reset: SequenceReset, reason: string): void {
    if (this.#reset !== 'producer-id') {
      this.#reset = reset;
      this.#resetReason = reason;
    }
  }

  #remove(batch: ProduceBatch): void {
    const at = this.#inFlight.indexOf(batch);
    if (at >= 0) this.#inFlight.splice(at, 1);
  }

  /**
   * Starts the partition's sequences again under `identity` (a bumped epoch or a new producer id):
   * the batches in flight get sequences from 0 in their order, so the broker takes them as the
   * start of the new epoch. Abandoned ones are left out: they are never sent again.
   */
  restartSequences(identity: ProducerIdentity): void {
    let sequence = 0;
    for (const batch of this.#inFlight) {
      if (!batch.idempotent || batch.abandoned) continue;
      batch.sequence = { ...identity, base: sequence };
      sequence = addSequence(sequence, batch.recordCount);
    }
    this.#identity = identity;
    this.#nextSequence = sequence;
    this.#lastAckedSequence = -1;
    this.#unresolved = undefined;
    this.#reset = undefined;
    this.#resetReason = '';
  }

  /**
   * Answers the calls whose deadline passed: batches never sent, or whose every attempt was
   * refused or never reached the broker, fail with the last error; batches that may have been
   * written get the unknown-outcome answer. A batch with an attempt out is answered now and
   * forgotten once that attempt ends.
   */
  expire(now: number): Expired {
    let failed = 0;
    let unknown = 0;
    while (this.#waiting[0] !== undefined && this.#waiting[0].deadline <= now) {
      const batch = this.#waiting.shift() as ProduceBatch;
      failed += batch.calls.length;
      batch.reject(this.#notWritten());
    }
    for (const batch of [...this.#inFlight]) {
      if (batch.abandoned || batch.deadline > now) continue;
      if (batch.sending !== undefined) {
        batch.abandoned = true;
        unknown += batch.calls.length;
        batch.reject(this.#unknown(batch, this.lastError));
        continue;
      }
      this.#remove(batch);
      if (batch.maybeWritten) {
        unknown += batch.calls.length;
        batch.reject(this.#unknown(batch, this.lastError));
      } else {
        failed += batch.calls.length;
        batch.reject(this.#notWritten());
      }
      this.#gaveUp(batch);
    }
    return { failed, unknown };
  }

  /** Fails every batch that can still fail (with the unknown-outcome answer where it may be written). */
  failAll(error: Error): Expired {
    let failed = 0;
    let unknown = 0;
    for (const batch of this.#waiting.splice(0)) {
      failed += batch.calls.length;
      batch.reject(error);
    }
    for (const batch of [...this.#inFlight]) {
      if (batch.abandoned) continue;
      if (batch.sending !== undefined || batch.maybeWritten) {
        unknown += batch.calls.length;
        batch.reject(this.#unknown(batch, error));
        if (batch.sending !== undefined) {
          batch.abandoned = true;
          continue;
        }
      } else {
        failed += batch.calls.length;
        batch.reject(error);
      }
      this.#remove(batch);
      this.#gaveUp(batch);
    }
    return { failed, unknown };
  }

  /**
   * A caller gave `call` up. While its records are in no request yet it leaves its batch (an
   * emptied batch goes) and rejects with its signal's reason. A batch already sent is not
   * recalled, except one waiting for its retry whose every call was given up with one reason
   * saying the topic or partition is gone (KGATE_TOPIC_NOT_FOUND): no sequence of a partition that
   * no longer exists can matter, so it is dropped and the sequences start again. False when
   * nothing was taken out.
   */
  giveUp(call: ProduceCall): boolean {
    for (let i = 0; i < this.#waiting.length; i++) {
      const batch = this.#waiting[i] as ProduceBatch;
      if (!batch.withdraw(call)) continue;
      if (batch.calls.length === 0) this.#waiting.splice(i, 1);
      call.reject(abortReason(call.signal ?? AbortSignal.abort()));
      return true;
    }
    const batch = this.#inFlight.find((b) => b.calls.includes(call));
    if (batch === undefined || batch.sending !== undefined || batch.abandoned) return false;
    let gone = false;
    for (const c of batch.calls) {
      if (c.signal?.aborted !== true) return false;
      if (errorCodeOf(c.signal.reason) === 'KGATE_TOPIC_NOT_FOUND') gone = true;
    }
    if (!gone) return false;
    this.#remove(batch);
    for (const c of batch.calls.splice(0)) c.reject(abortReason(c.signal ?? AbortSignal.abort()));
    if (batch.idempotent && batch.sequence !== undefined) this.#wantReset('epoch', 'the partition is gone');
    return true;
  }

  /** Fails the batches not sent yet (those `which` selects), as when no producer id can be had. */
  failWaiting(error: Error, which: (batch: ProduceBatch) => boolean): number {
    let failed = 0;
    for (let i = this.#waiting.length - 1; i >= 0; i--) {
      const batch = this.#waiting[i] as ProduceBatch;
      if (!which(batch)) continue;
      this.#waiting.splice(i, 1);
      failed += batch.calls.length;
      batch.reject(error);
    }
    return failed;
  }

  /** The answer to calls given up with their records certainly not written: the last error, with its code. */
  #notWritten(): Error {
    const last = this.lastError;
    const code = last === undefined ? undefined : errorCodeOf(last);
    return new KafkaClientError(
      `produce to ${this.topic}-${this.partition} gave up at its deadline, not written: ${
        last === undefined ? 'it could not be sent' : last.message
      }`,
      last === undefined || isRetriable(last),
      { ...(last === undefined ? {} : { cause: last }), ...(code === undefined ? {} : { code }) },
    );
  }

  #unknown(batch: ProduceBatch, cause: Error | undefined): ProduceOutcomeUnknownError {
    const where =
      batch.sequence === undefined
        ? ''
        : ` (producer ${batch.sequence.producerId}, epoch ${batch.sequence.epoch}, sequence ${batch.sequence.base})`;
    return new ProduceOutcomeUnknownError(
      this.topic,
      this.partition,
      batch.fromOffset,
      `produce to ${this.topic}-${this.partition}: sent${where}, but whether it was written could not be learned before its deadline${
        cause === undefined ? '' : `: ${cause.message}`
      }`,
      cause === undefined ? undefined : { cause },
    );
  }
}
