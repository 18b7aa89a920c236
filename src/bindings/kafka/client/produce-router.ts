import type { Logger } from 'pino';
import { errorCodeOf } from '../../../engine/errors.ts';
import { Api } from './apis/index.ts';
import { backoffDelay, sleep } from './backoff.ts';
import type { BrokerPool } from './broker-pool.ts';
import { isRetriable, KafkaProtocolError } from './errors.ts';
import type { ProduceActivity } from './fetcher.ts';
import type { ProduceOptions } from './kafka-api.ts';
import type { MetadataCache } from './metadata-cache.ts';
import { DEFAULTS, type KafkaClientOptions } from './options.ts';
import {
  abortReason,
  BrokerProducer,
  type ProduceCall,
  type ProducerIdentity,
  type ProduceResult,
  type ProduceUnit,
} from './producer.ts';
import type { ProduceRecord } from './protocol/records.ts';
import type { Retrier } from './retry.ts';

export interface ProduceRouterSettings {
  readonly options: KafkaClientOptions;
  readonly pool: BrokerPool;
  readonly metadata: MetadataCache;
  readonly retrier: Retrier;
  readonly log: Logger | undefined;
  /** Aborted when the client closes: failed units are not retried after that. */
  readonly closing: AbortSignal;
}

/** The produce activity of a broker no produce has reached yet while some produce call is under way. */
const DISPATCHING: ProduceActivity = { busy: true, lastActiveAt: 0 };

/**
 * Writes records: each call goes to the BrokerProducer of its partition's leader (one per broker),
 * with the idempotent producer id and per-partition sequence numbers they share, and failed
 * units are retried, re-routed after a leader change, until their delivery deadline.
 */
export class ProduceRouter {
  readonly #options: KafkaClientOptions;
  readonly #pool: BrokerPool;
  readonly #metadata: MetadataCache;
  readonly #retrier: Retrier;
  readonly #log: Logger | undefined;
  readonly #closing: AbortSignal;
  readonly #producers = new Map<string, BrokerProducer>();
  /** Produce calls still finding their partition's leader, before any BrokerProducer has them. */
  #dispatching = 0;
  #identity: Promise<ProducerIdentity> | undefined;
  readonly #sequences = new Map<string, number>();

  constructor(settings: ProduceRouterSettings) {
    this.#options = settings.options;
    this.#pool = settings.pool;
    this.#metadata = settings.metadata;
    this.#retrier = settings.retrier;
    this.#log = settings.log;
    this.#closing = settings.closing;
  }

  /**
   * The produce traffic on broker `nodeId`'s connection, for its fetches. A produce still looking up
   * its leader counts as produce on every broker: its Metadata, InitProducerId and Produce requests
   * would otherwise each queue behind a Fetch the broker holds for the full wait.
   */
  activity(nodeId: number): ProduceActivity | undefined {
    return this.#producers.get(String(nodeId)) ?? (this.#dispatching > 0 ? DISPATCHING : undefined);
  }

  produce(
    topic: string,
    partition: number,
    records: readonly ProduceRecord[],
    options: ProduceOptions = {},
  ): Promise<ProduceResult> {
    return new Promise((resolve, reject) => {
      if (records.length === 0) {
        resolve({ topic, partition, baseOffset: -1n, offsets: [], logAppendTime: null });
        return;
      }
      if (options.signal?.aborted === true) {
        reject(abortReason(options.signal));
        return;
      }
      const call: ProduceCall = {
        topic,
        partition,
        records,
        acks: options.acks ?? -1,
        compression: options.compression ?? 'none',
        ...(options.maxBatchBytes === undefined ? {} : { maxBatchBytes: options.maxBatchBytes }),
        ...(options.signal === undefined ? {} : { signal: options.signal }),
        resolve,
        reject,
      };
      const unit: ProduceUnit = {
        topic,
        partition,
        calls: [call],
        acks: call.acks,
        compression: call.compression,
        sequence: undefined,
        attempts: 0,
        deadline: Date.now() + (this.#options.deliveryTimeoutMs ?? DEFAULTS.deliveryTimeoutMs),
      };
      void this.#dispatch(unit);
    });
  }

  async #dispatch(unit: ProduceUnit): Promise<void> {
    this.#dispatching++;
    try {
      // A unit never sent stops looking for its leader as soon as its caller gives up.
      const signal = unit.sequence === undefined ? unit.calls[0]?.signal : undefined;
      const { nodeId } = await this.#retrier.retry(
        `produce ${unit.topic}-${unit.partition}`,
        () => {
          if (abandoned(unit)) throw new Error('produce abandoned');
          return this.#metadata.leader(unit.topic, unit.partition);
        },
        signal,
        unit.deadline,
      );
      if (this.#dropped(unit)) return;
      this.#producer(nodeId).send(unit);
    } catch (error) {
      if (this.#dropped(unit)) return;
      for (const call of unit.calls) call.reject(error instanceof Error ? error : new Error(String(error)));
    } finally {
      this.#dispatching--;
    }
  }

  /** Rejects the unit's calls, each with its signal's reason, when it was abandoned. */
  #dropped(unit: ProduceUnit): boolean {
    if (!abandoned(unit)) return false;
    const reasons = unit.calls.map((call) => abortReason(call.signal ?? AbortSignal.abort()));
    this.#log?.debug(
      { topic: unit.topic, partition: unit.partition, calls: unit.calls.length, err: reasons[0] },
      'produce dropped, not sent',
    );
    unit.calls.forEach((call, i) => call.reject(reasons[i] ?? new Error('produce abandoned')));
    return true;
  }

  #producer(nodeId: number): BrokerProducer {
    const key = String(nodeId);
    let producer = this.#producers.get(key);
    if (producer === undefined) {
      producer = new BrokerProducer({
        connect: () => this.#pool.brokerConnection(nodeId),
        identity: () => this.#producerIdentity(),
        takeSequence: (topic, partition, identity, count) => {
          const key = `${identity.producerId}:${identity.epoch}:${topic}:${partition}`;
          const base = this.#sequences.get(key) ?? 0;
          // Sequences wrap at 2^31 like the broker's.
          this.#sequences.set(key, (base + count) % 2 ** 31);
          return base;
        },
        failed: (unit, error) => void this.#produceFailed(unit, error),
        timeoutMs: this.#options.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs,
      });
      this.#producers.set(key, producer);
    }
    return producer;
  }

  async #produceFailed(unit: ProduceUnit, error: Error): Promise<void> {
    const deadline = unit.deadline;
    const reject = (failure: Error): void => {
      for (const call of unit.calls) call.reject(failure);
    };
    if (error instanceof KafkaProtocolError && [45, 47, 59].includes(error.brokerCode)) {
      // The broker lost or fenced our producer state: start over with a new producer id.
      this.#identity = undefined;
      unit.sequence = undefined;
      if (unit.attempts++ < 3 && Date.now() < deadline) {
        await this.#dispatch(unit);
        return;
      }
      reject(error);
      return;
    }
    if (!isRetriable(error) || this.#closing.aborted || Date.now() >= deadline) {
      reject(error);
      return;
    }
    const delay = backoffDelay(unit.attempts++, {
      initialMs: this.#options.retryInitialMs ?? DEFAULTS.retryInitialMs,
      maxMs: this.#options.retryMaxMs ?? DEFAULTS.retryMaxMs,
    });
    this.#log?.debug({ topic: unit.topic, partition: unit.partition, err: error, delay }, 'produce retry');
    await sleep(delay, this.#closing);
    try {
      await this.#metadata.refreshQuietly();
    } catch (failure) {
      reject(failure instanceof Error ? failure : new Error(String(failure)));
      return;
    }
    await this.#dispatch(unit);
  }

  #producerIdentity(): Promise<ProducerIdentity> {
    if (this.#identity === undefined) {
      const pending = this.#retrier.retry('init producer id', async () => {
        const result = await this.#pool.anyBroker((connection) =>
          connection.request(Api.InitProducerId, undefined),
        );
        if (result.errorCode !== 0) throw new KafkaProtocolError(result.errorCode, 'InitProducerId');
        return { producerId: result.producerId, epoch: result.producerEpoch };
      });
      pending.catch(() => {
        if (this.#identity === pending) this.#identity = undefined;
      });
      this.#identity = pending;
    }
    return this.#identity;
  }
}

/**
 * Whether a unit on its way to its leader is to be dropped rather than sent: every call in it was
 * given up, and the unit was never sent, or a reason says its topic or partition is gone (then no
 * sequence of that partition can matter any more).
 */
function abandoned(unit: ProduceUnit): boolean {
  if (unit.calls.length === 0) return false;
  let gone = false;
  for (const call of unit.calls) {
    if (call.signal?.aborted !== true) return false;
    if (errorCodeOf(call.signal.reason) === 'KGATE_TOPIC_NOT_FOUND') gone = true;
  }
  return unit.sequence === undefined || gone;
}
