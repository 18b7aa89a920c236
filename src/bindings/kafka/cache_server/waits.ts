import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { untilAborted } from '../../../engine/abort.ts';
import {
  KafkaClientError,
  KafkaWaitError,
  type KafkaReachability,
  type KafkaWaitKind,
} from '../client/index.ts';

/** Bounds on a wait for Kafka that a request makes through the cache_server. */
export interface WaitOptions {
  /** The caller left: the wait ends with the signal's reason. */
  readonly signal?: AbortSignal;
  /** How long the caller waits for Kafka; past it, a KafkaWaitError saying why. Unset: no bound. */
  readonly timeoutMs?: number;
}

/** Why a request could not be served at once, as the counter labels it. */
type Outcome = KafkaWaitKind | 'not_reached';

const METRIC = 'kgate_cache_kafka_waits_expired_total';

function expiredCounter(registry: Registry): Counter<'binding' | 'waiting_for'> {
  const existing = registry.getSingleMetric(METRIC);
  if (existing !== undefined) return existing as Counter<'binding' | 'waiting_for'>;
  return new Counter({
    name: METRIC,
    help: 'Requests answered without what they waited for from Kafka: their deadline ran out, or no broker had answered since start (waiting_for="not_reached")',
    labelNames: ['binding', 'waiting_for'],
    registers: [registry],
  });
}

export interface KafkaWaitsSettings {
  readonly binding: string;
  readonly log: Logger;
  readonly metrics: Registry;
  /** How the cluster behind `topic` is reachable, when its client can tell. */
  readonly reachability: (topic: string) => KafkaReachability | undefined;
}

/**
 * The waits for Kafka that requests make through a cache_server (a topic's metadata and config, a
 * partition count, and what the client waits for before a produce is sent), each bounded by its
 * caller's deadline, and the answers when they run out: which wait, and why. Only the caller's
 * wait is bounded; what it waited for goes on being asked for as long as anyone needs it. A
 * request made before any broker answered since start is refused at once instead, saying so.
 * One warning is logged when waits start running out, and one line when one is served again.
 */
export class KafkaWaits {
  readonly #binding: string;
  readonly #log: Logger;
  readonly #expired: Counter<'binding' | 'waiting_for'>;
  readonly #reachability: (topic: string) => KafkaReachability | undefined;
  #failing = false;

  constructor(settings: KafkaWaitsSettings) {
    this.#binding = settings.binding;
    this.#log = settings.log;
    this.#expired = expiredCounter(settings.metrics);
    this.#reachability = settings.reachability;
  }

  /**
   * Throws while no broker of the cluster behind `topic` has answered since start and the last
   * attempt failed: a request then fails at once, saying why, instead of waiting its whole
   * deadline for a Kafka that has never been there. Once a broker answered, outages are waited
   * out within each request's deadline.
   */
  checkReached(topic: string): void {
    const reach = this.#reachability(topic);
    if (reach === undefined || reach.reached || reach.unreachable === undefined) return;
    this.#count('not_reached');
    throw new KafkaClientError(`Kafka has not answered since kgate started: ${reach.unreachable}`, false, {
      code: 'KGATE_KAFKA_UNAVAILABLE',
    });
  }

  /**
   * `waiting`, bounded by `options`: past `timeoutMs` it rejects with a KafkaWaitError for
   * `waitingFor` of `topic`; when the signal aborts, with the signal's reason. `waiting` itself
   * runs on for whoever else waits for it.
   */
  async within<T>(
    waiting: Promise<T>,
    topic: string,
    waitingFor: KafkaWaitKind,
    options: WaitOptions,
  ): Promise<T> {
    const { signal, timeoutMs } = options;
    const deadline = timeoutMs === undefined ? undefined : AbortSignal.timeout(Math.max(0, timeoutMs));
    const stops = [signal, deadline].filter((s): s is AbortSignal => s !== undefined);
    if (stops.length === 0) return waiting;
    try {
      const value = await untilAborted(
        waiting,
        stops.length === 1 ? (stops[0] as AbortSignal) : AbortSignal.any(stops),
      );
      this.served();
      return value;
    } catch (error) {
      if (deadline?.aborted !== true || signal?.aborted === true || error !== deadline.reason) throw error;
      throw this.expired(
        new KafkaWaitError(waitingFor, topic, timeoutMs ?? 0, this.#reachability(topic)?.unreachable),
      );
    }
  }

  /** A wait that ran out, here or in the client: counted, and logged if it is the first in a while. */
  expired(error: KafkaWaitError): KafkaWaitError {
    this.#count(error.waitingFor);
    if (!this.#failing) {
      this.#failing = true;
      this.#log.warn(
        { waitingFor: error.waitingFor, subject: error.subject, err: error },
        'requests ran out of time waiting for Kafka',
      );
    }
    return error;
  }

  /** A request got what it waited for: the next wait that runs out is logged again. */
  served(): void {
    if (!this.#failing) return;
    this.#failing = false;
    this.#log.info('requests are served from Kafka again');
  }

  #count(outcome: Outcome): void {
    this.#expired.inc({ binding: this.#binding, waiting_for: outcome });
  }
}
