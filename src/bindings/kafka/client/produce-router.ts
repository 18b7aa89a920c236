import type { Logger } from 'pino';
import { backoffDelay, sleep } from './backoff.ts';
import type { BrokerConnection } from './connection.ts';
import {
  ConnectionError,
  isRetriable,
  type KafkaWaitKind,
  messageOf,
  ProduceOutcomeUnknownError,
} from './errors.ts';
import type { ProduceActivity } from './fetcher.ts';
import type { ProduceOptions } from './kafka-api.ts';
import type { ProduceMetrics } from './metrics.ts';
import { DEFAULTS, type KafkaClientOptions } from './options.ts';
import { untilAborted } from '../../../engine/abort.ts';
import {
  type AttemptEnd,
  type Expired,
  MAX_IN_FLIGHT_PER_PARTITION,
  PartitionQueue,
} from './partition-queue.ts';
import {
  abortReason,
  type ProduceBatch,
  type Acks,
  type ProduceCall,
  type ProducerIdentity,
  type ProduceResult,
} from './produce-batch.ts';
import { BrokerProducer } from './producer.ts';
import { ProducerIdentities } from './producer-identity.ts';
import type { ProduceRecord } from './protocol/records.ts';

export interface ProduceRouterSettings {
  readonly options: KafkaClientOptions;
  /** The connection to broker `nodeId`. */
  readonly connect: (nodeId: number) => Promise<BrokerConnection>;
  /** The node id of the partition's leader, from cached metadata when known. */
  readonly leader: (topic: string, partition: number) => Promise<number>;
  /** Refreshes the cached metadata; retriable failures pass quietly. */
  readonly refresh: () => Promise<void>;
  /** A new idempotent producer id, retried until it comes or fails for good. */
  readonly initProducerId: () => Promise<ProducerIdentity>;
  readonly metrics: ProduceMetrics;
  readonly log: Logger | undefined;
  /** Aborted when the client closes: failed units are not retried after that. */
  readonly closing: AbortSignal;
}

/** Backoff of a leader lookup that a call waiting to be sent makes (see prepare). */
const LEADER_RETRY = { initialMs: 100, maxMs: 1_000 };

/** The produce activity of a broker no produce has reached yet while some produce call is under way. */
const DISPATCHING: ProduceActivity = { busy: true, lastActiveAt: 0 };

/** Where a partition's batches go: the sender of its leader, once known. */
interface Route {
  readonly queue: PartitionQueue;
  sender: BrokerProducer | undefined;
  /** A leader lookup is under way. */
  resolving: boolean;
  /** Metadata is refreshed before the next lookup: the last failure said the leader may have moved. */
  refresh: boolean;
  /** Wakes the partition when its backoff ends. */
  timer: NodeJS.Timeout | undefined;
}

/**
 * Writes records: one ordered queue per partition (PartitionQueue, with the idempotent producer's
 * sequence rules), whose batches go to the BrokerProducer of the partition's leader (one per
 * broker). Failures back off per partition, so a partition's retries keep their order; a leader
 * that moved is looked up again after a metadata refresh; every call is answered by its deadline
 * (`deliveryTimeoutMs`): written, certainly not written, or, when the broker may hold it, with
 * the unknown-outcome error.
 */
export class ProduceRouter {
  readonly #options: KafkaClientOptions;
  readonly #settings: ProduceRouterSettings;
  readonly #log: Logger | undefined;
  readonly #metrics: ProduceMetrics;
  readonly #closing: AbortSignal;
  readonly #routes = new Map<string, Route>();
  readonly #producers = new Map<number, BrokerProducer>();
  readonly #identities: ProducerIdentities;
  /** Partitions looking up their leader, before any BrokerProducer has them. */
  #dispatching = 0;
  #sweep: NodeJS.Timeout | undefined;
  #resetting = false;
  #resetAgain = false;

  constructor(settings: ProduceRouterSettings) {
    this.#settings = settings;
    this.#options = settings.options;
    this.#log = settings.log;
    this.#metrics = settings.metrics;
    this.#closing = settings.closing;
    this.#identities = new ProducerIdentities(async () => {
      const identity = await settings.initProducerId();
      this.#log?.info(
        { producerId: String(identity.producerId), epoch: identity.epoch },
        'idempotent producer id obtained',
      );
      return identity;
    });
  }

  /**
   * The produce traffic on broker `nodeId`'s connection, for its fetches. A produce still looking up
   * its leader counts as produce on every broker: its Metadata, InitProducerId and Produce requests
   * would otherwise each queue behind a Fetch the broker holds for the full wait.
   */
  activity(nodeId: number): ProduceActivity | undefined {
    return this.#producers.get(nodeId) ?? (this.#dispatching > 0 ? DISPATCHING : undefined);
  }

  /**
   * Waits for what a call to the partition needs before it can be sent: its leader and, for
   * acks=-1, a producer id, so that a call queued right after finds both. The leader lookup
   * retries until `signal` aborts; the producer id is asked for once for every caller, for as long
   * as the client lives. `waiting` is told what is waited for at each step.
   */
  async prepare(
    topic: string,
    partition: number,
    acks: Acks,
    signal: AbortSignal,
    waiting: (what: KafkaWaitKind) => void,
  ): Promise<void> {
    waiting('leader');
    for (let attempt = 0; ; attempt++) {
      signal.throwIfAborted();
      try {
        await untilAborted(this.#settings.leader(topic, partition), signal);
        break;
      } catch (error) {
        if (signal.aborted || this.#closing.aborted || !isRetriable(error)) throw error;
        await sleep(backoffDelay(attempt, LEADER_RETRY), signal);
        if (!signal.aborted) await this.#settings.refresh();
      }
    }
    if (acks !== -1) return;
    waiting('producer_id');
    await untilAborted(this.#identities.ensure(), signal);
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
      if (this.#closing.aborted) {
        reject(new ConnectionError('Kafka client is closed'));
        return;
      }
      const signal = options.signal;
      if (signal?.aborted === true) {
        reject(abortReason(signal));
        return;
      }
      const metrics = this.#metrics;
      const route = this.#route(topic, partition);
      const giveUp = (): void => {
        if (!route.queue.giveUp(call)) return;
        if (route.queue.resetWanted !== undefined) this.#restartSequences();
        route.sender?.wake();
      };
      const call: ProduceCall = {
        records,
        acks: options.acks ?? -1,
        compression: options.compression ?? 'none',
        ...(options.maxBatchBytes === undefined ? {} : { maxBatchBytes: options.maxBatchBytes }),
        ...(signal === undefined ? {} : { signal }),
        resolve: (result) => {
          signal?.removeEventListener('abort', giveUp);
          metrics.answered('written');
          resolve(result);
        },
        reject: (error) => {
          signal?.removeEventListener('abort', giveUp);
          metrics.answered(error instanceof ProduceOutcomeUnknownError ? 'unknown' : 'failed');
          reject(error);
        },
      };
      signal?.addEventListener('abort', giveUp, { once: true });
      route.queue.add(call, Date.now() + (this.#options.deliveryTimeoutMs ?? DEFAULTS.deliveryTimeoutMs));
      this.#armSweep();
      if (route.sender !== undefined) route.sender.wake();
      else if (route.timer === undefined) this.#resolve(route);
    });
  }

  /** Answers every call still queued: the client is closing. */
  close(): void {
    if (this.#sweep !== undefined) clearInterval(this.#sweep);
    this.#sweep = undefined;
    const error = new ConnectionError('Kafka client is closed');
    for (const route of this.#routes.values()) {
      if (route.timer !== undefined) clearTimeout(route.timer);
      route.timer = undefined;
      route.queue.failAll(error);
    }
  }

  #route(topic: string, partition: number): Route {
    const key = `${topic}\u0000${partition}`;
    let route = this.#routes.get(key);
    if (route === undefined) {
      const backoff = {
        initialMs: this.#options.retryInitialMs ?? DEFAULTS.retryInitialMs,
        maxMs: this.#options.retryMaxMs ?? DEFAULTS.retryMaxMs,
      };
      const queue = new PartitionQueue(topic, partition, (failures) => backoffDelay(failures, backoff));
      route = { queue, sender: undefined, resolving: false, refresh: false, timer: undefined };
      this.#routes.set(key, route);
    }
    return route;
  }

  /** Looks the partition's leader up and hands the partition to that broker's producer. */
  #resolve(route: Route): void {
    if (route.resolving || route.sender !== undefined || this.#closing.aborted) return;
    route.resolving = true;
    this.#dispatching++;
    const { queue } = route;
    void (async () => {
      try {
        if (route.refresh) {
          route.refresh = false;
          await this.#settings.refresh();
        }
        const nodeId = await this.#settings.leader(queue.topic, queue.partition);
        if (this.#closing.aborted) return;
        route.sender = this.#producer(nodeId);
        route.sender.attach(queue);
      } catch (error) {
        const failure = error instanceof Error ? error : new Error(String(error));
        if (!isRetriable(failure)) {
          this.#answered(queue, queue.failAll(failure), failure);
          return;
        }
        this.#log?.debug(
          { topic: queue.topic, partition: queue.partition, err: failure },
          'produce leader lookup failed',
        );
        route.refresh = true;
        queue.noteFailure(failure, Date.now());
        this.#later(route, queue.retryAt);
      } finally {
        route.resolving = false;
        this.#dispatching--;
      }
    })();
  }

  /** Wakes the partition at `at`: its sender sends again, or its leader is looked up. */
  #later(route: Route, at: number): void {
    if (route.timer !== undefined) return;
    route.timer = setTimeout(
      () => {
        route.timer = undefined;
        if (route.queue.empty) return;
        if (route.sender !== undefined) route.sender.wake();
        else this.#resolve(route);
      },
      Math.max(0, Math.ceil(at - Date.now())),
    );
  }

  #producer(nodeId: number): BrokerProducer {
    let producer = this.#producers.get(nodeId);
    if (producer === undefined) {
      producer = new BrokerProducer({
        connect: () => this.#settings.connect(nodeId),
        identity: () => this.#identities.current,
        ensureIdentity: () => this.#ensureIdentity(),
        ended: (queue, batch, end) => this.#ended(queue, batch, end),
        unreachable: (queues, error) => {
          for (const queue of queues) this.#unreachable(queue, error);
        },
        timeoutMs: this.#options.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs,
        maxRequests: Math.min(
          MAX_IN_FLIGHT_PER_PARTITION,
          Math.max(1, this.#options.produceRequestsInFlight ?? DEFAULTS.produceRequestsInFlight),
        ),
      });
      this.#producers.set(nodeId, producer);
    }
    return producer;
  }

  #routeOf(queue: PartitionQueue): Route {
    return this.#route(queue.topic, queue.partition);
  }

  #ended(queue: PartitionQueue, batch: ProduceBatch, end: AttemptEnd): void {
    const now = Date.now();
    const verdict = queue.ended(batch, end, now);
    // Given up while this attempt was out: a batch to retry for a partition gone is dropped now.
    const first = batch.calls[0];
    if (end.kind !== 'acked' && first?.signal?.aborted === true) queue.giveUp(first);
    if (end.kind !== 'acked') {
      const reason = end.kind === 'lost' ? 'connection' : end.error.errorName;
      this.#metrics.retried(reason);
      this.#log?.debug(
        {
          topic: queue.topic,
          partition: queue.partition,
          err: end.error,
          retryInMs: Math.max(0, queue.retryAt - now),
        },
        'produce attempt failed',
      );
    }
    const route = this.#routeOf(queue);
    if (verdict.reroute) this.#reroute(route);
    else if (queue.retryAt > now) this.#later(route, queue.retryAt);
    if (queue.resetWanted !== undefined) this.#restartSequences();
    this.#expire(route, now);
    // The partition may have moved to another broker while this attempt was out.
    route.sender?.wake();
  }

  /** The broker could not be reached for the partition: it backs off and looks its leader up again. */
  #unreachable(queue: PartitionQueue, error: Error): void {
    queue.noteFailure(error, Date.now());
    this.#reroute(this.#routeOf(queue));
  }

  /** Takes the partition from its broker's producer; it looks its leader up again after its backoff. */
  #reroute(route: Route): void {
    if (route.sender !== undefined) {
      route.sender.detach(route.queue);
      route.sender = undefined;
    }
    route.refresh = true;
    this.#later(route, route.queue.retryAt);
  }

  async #ensureIdentity(): Promise<ProducerIdentity | undefined> {
    try {
      return await this.#identities.ensure();
    } catch (error) {
      if (this.#closing.aborted) return undefined;
      const failure = error instanceof Error ? error : new Error(String(error));
      this.#log?.error(
        { err: failure },
        'no idempotent producer id; failing the produce calls waiting for one',
      );
      for (const route of this.#routes.values()) {
        const failed = route.queue.failWaiting(failure, (batch) => batch.idempotent);
        if (failed > 0) this.#answered(route.queue, { failed, unknown: 0 }, failure);
      }
      return undefined;
    }
  }

  /**
   * Starts the sequences of the partitions that want it under a new epoch (or a new producer id):
   * one bump for all the partitions that asked in the same turn. The other partitions keep the
   * old epoch until their batches in flight are answered, then take the new one from 0.
   */
  #restartSequences(): void {
    if (this.#resetting) {
      this.#resetAgain = true;
      return;
    }
    this.#resetting = true;
    queueMicrotask(() => {
      void (async () => {
        try {
          do {
            this.#resetAgain = false;
            await this.#restartOnce();
          } while (this.#resetAgain && !this.#closing.aborted);
        } finally {
          this.#resetting = false;
        }
      })();
    });
  }

  async #restartOnce(): Promise<void> {
    const wanting = [...this.#routes.values()].filter((r) => r.queue.resetWanted !== undefined);
    if (wanting.length === 0) return;
    const newId = wanting.some((r) => r.queue.resetWanted === 'producer-id');
    const before = this.#identities.current;
    let identity: ProducerIdentity | undefined;
    if (newId) this.#identities.reset();
    else identity = this.#identities.bumpEpoch();
    identity ??= await this.#ensureIdentity();
    if (identity === undefined) return;
    const partitions: string[] = [];
    const reasons = new Set<string>();
    for (const route of wanting) {
      if (route.queue.resetWanted === undefined) continue;
      partitions.push(`${route.queue.topic}-${route.queue.partition}`);
      reasons.add(route.queue.resetReason);
      route.queue.restartSequences(identity);
    }
    this.#metrics.epochBumped();
    this.#log?.info(
      {
        partitions,
        reason: [...reasons].join('; '),
        producerId: String(identity.producerId),
        epoch: identity.epoch,
        ...(before === undefined ? {} : { previousEpoch: before.epoch }),
      },
      newId
        ? 'idempotent producer id replaced; sequences restart'
        : 'producer epoch bumped; sequences restart',
    );
    for (const producer of this.#producers.values()) producer.wake();
  }

  #armSweep(): void {
    if (this.#sweep !== undefined) return;
    const delivery = this.#options.deliveryTimeoutMs ?? DEFAULTS.deliveryTimeoutMs;
    const every = Math.min(1_000, Math.max(20, Math.floor(delivery / 20)));
    this.#sweep = setInterval(() => this.#sweepAll(), every);
    this.#sweep.unref();
  }

  /** Answers calls past their deadline; stops once no partition holds anything. */
  #sweepAll(): void {
    const now = Date.now();
    let busy = false;
    for (const route of this.#routes.values()) {
      this.#expire(route, now);
      if (!route.queue.empty) busy = true;
    }
    if (!busy && this.#sweep !== undefined) {
      clearInterval(this.#sweep);
      this.#sweep = undefined;
    }
  }

  #expire(route: Route, now: number): void {
    const expired = route.queue.expire(now);
    if (expired.failed + expired.unknown === 0) return;
    this.#answered(route.queue, expired, route.queue.lastError);
    if (route.queue.resetWanted !== undefined) this.#restartSequences();
    route.sender?.wake();
  }

  /** One line per partition and event for calls answered without being written. */
  #answered(queue: PartitionQueue, expired: Expired, error: Error | undefined): void {
    if (expired.failed + expired.unknown === 0) return;
    this.#log?.warn(
      {
        topic: queue.topic,
        partition: queue.partition,
        notWritten: expired.failed,
        outcomeUnknown: expired.unknown,
        ...(error === undefined ? {} : { reason: messageOf(error) }),
      },
      expired.unknown > 0
        ? 'produce calls answered with their outcome unknown'
        : 'produce calls failed, not written',
    );
  }
}
