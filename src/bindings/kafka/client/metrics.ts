import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ConnectionObserver } from './connection.ts';

/**
 * Metrics are created once per registry and shared by every kafka client binding in it; the
 * `binding` label tells them apart.
 */
export interface ClientMetrics {
  observer(broker: string): ConnectionObserver;
  connectionOpened(broker: string, reconnect: boolean): void;
  /** A broker's connection went down (false) or came back (true). */
  brokerState(broker: string, up: boolean): void;
  readonly produce: ProduceMetrics;
}

export interface ProduceMetrics {
  /** A produce call was answered: written, certainly not written, or of unknown outcome. */
  answered(outcome: 'written' | 'failed' | 'unknown'): void;
  /** A batch's attempt failed and it will be sent again; `reason` is the broker's error name or `connection`. */
  retried(reason: string): void;
  /** The producer's sequences restarted under a new epoch or producer id. */
  epochBumped(): void;
}

function metric<T>(registry: Registry, name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}

export function createClientMetrics(registry: Registry | undefined, binding: string): ClientMetrics {
  if (registry === undefined) {
    const noop: ConnectionObserver = { requestStarted() {}, requestFinished() {} };
    return {
      observer: () => noop,
      connectionOpened() {},
      brokerState() {},
      produce: { answered() {}, retried() {}, epochBumped() {} },
    };
  }
  const registers = [registry];
  const requests = metric(
    registry,
    'kgate_kafka_client_requests_total',
    () =>
      new Counter({
        name: 'kgate_kafka_client_requests_total',
        help: 'Kafka requests sent, by API and outcome',
        labelNames: ['binding', 'broker', 'api', 'outcome'],
        registers,
      }),
  );
  const latency = metric(
    registry,
    'kgate_kafka_client_request_duration_seconds',
    () =>
      new Histogram({
        name: 'kgate_kafka_client_request_duration_seconds',
        help: 'Time from writing a Kafka request to decoding its response',
        labelNames: ['binding', 'broker', 'api'],
        buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
        registers,
      }),
  );
  const inFlight = metric(
    registry,
    'kgate_kafka_client_in_flight_requests',
    () =>
      new Gauge({
        name: 'kgate_kafka_client_in_flight_requests',
        help: 'Kafka requests written and not yet answered',
        labelNames: ['binding', 'broker'],
        registers,
      }),
  );
  const connections = metric(
    registry,
    'kgate_kafka_client_connections_opened_total',
    () =>
      new Counter({
        name: 'kgate_kafka_client_connections_opened_total',
        help: 'Connections opened to Kafka brokers',
        labelNames: ['binding', 'broker'],
        registers,
      }),
  );
  const reconnects = metric(
    registry,
    'kgate_kafka_client_reconnects_total',
    () =>
      new Counter({
        name: 'kgate_kafka_client_reconnects_total',
        help: 'Connections opened to a broker that had been connected before',
        labelNames: ['binding', 'broker'],
        registers,
      }),
  );
  const brokerUp = metric(
    registry,
    'kgate_kafka_client_broker_up',
    () =>
      new Gauge({
        name: 'kgate_kafka_client_broker_up',
        help: 'Whether the connection to a broker kgate has connected to is up (1) or lost and not yet back (0)',
        labelNames: ['binding', 'broker'],
        registers,
      }),
  );
  const outages = metric(
    registry,
    'kgate_kafka_client_broker_outages_total',
    () =>
      new Counter({
        name: 'kgate_kafka_client_broker_outages_total',
        help: 'Times the connection to a broker was lost (once per outage, however many attempts it failed)',
        labelNames: ['binding', 'broker'],
        registers,
      }),
  );
  const produceCalls = metric(
    registry,
    'kgate_kafka_client_produce_calls_total',
    () =>
      new Counter({
        name: 'kgate_kafka_client_produce_calls_total',
        help: 'Produce calls answered, by outcome: written, failed (certainly not written) or unknown (sent, not settled by the deadline)',
        labelNames: ['binding', 'outcome'],
        registers,
      }),
  );
  const produceRetries = metric(
    registry,
    'kgate_kafka_client_produce_retries_total',
    () =>
      new Counter({
        name: 'kgate_kafka_client_produce_retries_total',
        help: 'Produce attempts of a batch that failed and were retried, by reason (broker error name, or connection)',
        labelNames: ['binding', 'reason'],
        registers,
      }),
  );
  const epochBumps = metric(
    registry,
    'kgate_kafka_client_producer_epoch_bumps_total',
    () =>
      new Counter({
        name: 'kgate_kafka_client_producer_epoch_bumps_total',
        help: "Restarts of the idempotent producer's sequences under a new epoch or producer id",
        labelNames: ['binding'],
        registers,
      }),
  );
  return {
    brokerState(broker, up) {
      brokerUp.set({ binding, broker }, up ? 1 : 0);
      if (!up) outages.inc({ binding, broker });
    },
    produce: {
      answered(outcome) {
        produceCalls.inc({ binding, outcome });
      },
      retried(reason) {
        produceRetries.inc({ binding, reason });
      },
      epochBumped() {
        epochBumps.inc({ binding });
      },
    },
    observer(broker) {
      const labels = { binding, broker };
      return {
        requestStarted() {
          inFlight.inc(labels);
        },
        requestFinished(api, seconds, outcome) {
          inFlight.dec(labels);
          requests.inc({ binding, broker, api, outcome });
          latency.observe({ binding, broker, api }, seconds);
        },
      };
    },
    connectionOpened(broker, reconnect) {
      connections.inc({ binding, broker });
      if (reconnect) reconnects.inc({ binding, broker });
    },
  };
}
