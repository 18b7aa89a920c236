import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { SaslConfig } from './sasl.ts';

export interface KafkaClientOptions {
  /** Bootstrap servers, `host:port`. */
  readonly servers: readonly string[];
  readonly clientId?: string;
  readonly sasl?: SaslConfig;
  /** TLS to every broker when set; `ca` is PEM, `servername` overrides SNI. */
  readonly tls?: TlsConnectionOptions;
  readonly connectTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
  /** Requests written to one connection before answers come back. */
  readonly maxInFlight?: number;
  readonly maxFrameBytes?: number;
  readonly retryInitialMs?: number;
  readonly retryMaxMs?: number;
  /**
   * How long produce() keeps retrying before it answers: by then its records are written, certainly
   * not written, or (sent, no answer settled it) of unknown outcome.
   */
  readonly deliveryTimeoutMs?: number;
  /**
   * Produce requests one broker connection carries at once (1 to 5). Each carries at most one
   * batch per partition, so this also bounds a partition's batches in flight.
   */
  readonly produceRequestsInFlight?: number;
  /** How long a broker this client does not produce to may hold a Fetch for data. */
  readonly fetchMaxWaitMs?: number;
  /**
   * The same bound for a broker this client has produced to. Brokers answer a connection's
   * requests in order, so this is how long the first produce after a quiet spell may wait behind
   * a Fetch; while produce is active, fetches do not wait at all (see BrokerFetcher).
   */
  readonly fetchMaxWaitProducingMs?: number;
  readonly fetchMaxBytes?: number;
  readonly logger?: Logger;
  readonly metrics?: Registry;
  /** Metric label; the binding name. */
  readonly name?: string;
}

/** The options' defaults, and settings no option changes (the produce window, fetch pacing and size). */
export const DEFAULTS = {
  clientId: 'kgate',
  connectTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  maxInFlight: 16,
  maxFrameBytes: 256 * 1024 * 1024,
  retryInitialMs: 100,
  retryMaxMs: 5_000,
  deliveryTimeoutMs: 120_000,
  produceRequestsInFlight: 1,
  fetchMaxWaitMs: 250,
  fetchMaxWaitProducingMs: 50,
  // Produce this recent keeps fetches from waiting at the broker; they are paced instead, which
  // bounds an idle topic's polling to 1000 / fetchBusyIntervalMs requests per second meanwhile.
  produceActiveWindowMs: 1_000,
  fetchBusyIntervalMs: 5,
  fetchMaxBytes: 50 * 1024 * 1024,
  fetchPartitionMaxBytes: 1024 * 1024,
};
