import type { Logger } from 'pino';
import type { MetadataBroker } from './apis/metadata.ts';
import { BrokerLinks } from './broker-links.ts';
import { BrokerConnection } from './connection.ts';
import { ConnectionError, isRetriable, KafkaProtocolError, messageOf } from './errors.ts';
import type { ClientMetrics } from './metrics.ts';
import { DEFAULTS, type KafkaClientOptions } from './options.ts';

export interface BrokerAddress {
  readonly host: string;
  readonly port: number;
}

export function parseServer(server: string): BrokerAddress {
  const colon = server.lastIndexOf(':');
  const host = server.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  const port = Number(server.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new Error(`invalid Kafka server "${server}", expected host:port`);
  }
  return { host, port };
}

export interface BrokerPoolSettings {
  readonly options: KafkaClientOptions;
  /** The bootstrap servers, parsed. */
  readonly servers: readonly BrokerAddress[];
  readonly metrics: ClientMetrics;
  readonly log: Logger | undefined;
  /** Aborted when the client closes: no connection is opened after that. */
  readonly closing: AbortSignal;
}

/**
 * The brokers of one cluster and one connection to each, shared by every request to that broker.
 * Brokers are known by address from the bootstrap servers and by node id from the latest
 * metadata; a connection that closes is forgotten, and the next request opens a new one.
 */
export class BrokerPool {
  readonly #options: KafkaClientOptions;
  readonly #servers: readonly BrokerAddress[];
  readonly #log: Logger | undefined;
  readonly #metrics: ClientMetrics;
  readonly #closing: AbortSignal;
  readonly #connections = new Map<string, Promise<BrokerConnection>>();
  readonly #everConnected = new Set<string>();
  /** Connections past their handshake and not yet closed. */
  readonly #live = new Set<BrokerConnection>();
  #lastError: string | undefined;
  #probing: Promise<boolean> | undefined;
  #brokers = new Map<number, MetadataBroker>();
  #connectionsOpened = 0;
  readonly #links: BrokerLinks;

  constructor(settings: BrokerPoolSettings) {
    this.#options = settings.options;
    this.#servers = settings.servers;
    this.#log = settings.log;
    this.#metrics = settings.metrics;
    this.#closing = settings.closing;
    this.#links = new BrokerLinks({
      log: settings.log,
      metrics: settings.metrics,
      backoff: {
        initialMs: this.#options.retryInitialMs ?? DEFAULTS.retryInitialMs,
        maxMs: this.#options.retryMaxMs ?? DEFAULTS.retryMaxMs,
      },
      reconnect: (address) => {
        const { host, port } = parseServer(address);
        this.#connection(host, port).catch(() => undefined);
      },
      nodeIdOf: (address) => {
        for (const broker of this.#brokers.values())
          if (`${broker.host}:${broker.port}` === address) return broker.nodeId;
        return undefined;
      },
    });
  }

  /** The bootstrap servers, for messages. */
  get bootstrapServers(): string {
    return this.#servers.map((s) => `${s.host}:${s.port}`).join(', ');
  }

  /** Connections opened over the pool's life. */
  get connectionsOpened(): number {
    return this.#connectionsOpened;
  }

  /** Open connections by broker address. */
  openConnections(): string[] {
    return [...this.#connections.keys()];
  }

  /** Whether some broker connection is open right now. */
  isConnected(): boolean {
    return this.#live.size > 0;
  }

  /** Why the most recent connection attempt or open connection failed; cleared by the next success. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  /**
   * Connects to some broker unless a connection is already open, and says whether one is open then.
   * Nothing else reconnects an idle client after an outage, so a health check that only looked at
   * `isConnected()` would stay unready after the brokers came back.
   */
  probe(): Promise<boolean> {
    if (this.isConnected()) return Promise.resolve(true);
    this.#probing ??= this.anyBroker(() => Promise.resolve(true))
      .catch((error: unknown) => {
        this.#lastError = messageOf(error);
        return false;
      })
      .finally(() => {
        this.#probing = undefined;
      });
    return this.#probing;
  }

  /** The brokers of the cluster as the latest metadata names them. */
  setBrokers(brokers: readonly MetadataBroker[]): void {
    this.#brokers = new Map(brokers.map((b) => [b.nodeId, b]));
  }

  /** Closes every connection; call once `closing` has aborted. */
  async close(): Promise<void> {
    this.#links.close();
    const connections = [...this.#connections.values()];
    this.#connections.clear();
    for (const pending of connections) {
      try {
        (await pending).close();
      } catch {
        // never connected
      }
    }
  }

  #connection(host: string, port: number): Promise<BrokerConnection> {
    const address = `${host}:${port}`;
    const existing = this.#connections.get(address);
    if (existing !== undefined) return existing;
    if (this.#closing.aborted) return Promise.reject(new ConnectionError('Kafka client is closed'));
    const connection = new BrokerConnection({
      host,
      port,
      clientId: this.#options.clientId ?? DEFAULTS.clientId,
      tls: this.#options.tls,
      sasl: this.#options.sasl,
      connectTimeoutMs: this.#options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
      requestTimeoutMs: this.#options.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs,
      maxInFlight: this.#options.maxInFlight ?? DEFAULTS.maxInFlight,
      maxFrameBytes: this.#options.maxFrameBytes ?? DEFAULTS.maxFrameBytes,
      observer: this.#metrics.observer(address),
    });
    const opening = connection.connect().then(() => connection);
    this.#connections.set(address, opening);
    let handshaken = false;
    connection.onClose((error, pending) => {
      this.#live.delete(connection);
      if (!this.#closing.aborted) this.#lastError = error.message;
      if (this.#connections.get(address) === opening) this.#connections.delete(address);
      if (!this.#closing.aborted) {
        this.#log?.debug({ broker: address, err: error, pending }, 'broker connection closed');
        if (handshaken) this.#links.closed(address, error, pending);
      }
    });
    opening.then(
      () => {
        handshaken = true;
        if (!connection.closed) this.#live.add(connection);
        this.#lastError = undefined;
        this.#connectionsOpened++;
        this.#metrics.connectionOpened(address, this.#everConnected.has(address));
        this.#everConnected.add(address);
        this.#links.opened(address);
      },
      (error: unknown) => {
        this.#lastError = messageOf(error);
        if (this.#connections.get(address) === opening) this.#connections.delete(address);
        if (!this.#closing.aborted)
          this.#links.failed(address, error instanceof Error ? error : new Error(String(error)));
      },
    );
    return opening;
  }

  /** The connection to broker `nodeId` of the latest metadata. */
  brokerConnection(nodeId: number): Promise<BrokerConnection> {
    const broker = this.#brokers.get(nodeId);
    if (broker === undefined) {
      return Promise.reject(new KafkaProtocolError(8, `broker ${nodeId} is not in the cluster metadata`));
    }
    return this.#connection(broker.host, broker.port);
  }

  /** Runs `op` on some broker: open connections first, then known brokers, then bootstrap servers. */
  async anyBroker<T>(op: (connection: BrokerConnection) => Promise<T>): Promise<T> {
    const candidates: { host: string; port: number }[] = [];
    const seen = new Set<string>();
    const add = (host: string, port: number): void => {
      const key = `${host}:${port}`;
      if (!seen.has(key)) {
        seen.add(key);
        candidates.push({ host, port });
      }
    };
    for (const address of this.#connections.keys()) {
      const { host, port } = parseServer(address);
      add(host, port);
    }
    for (const broker of this.#brokers.values()) add(broker.host, broker.port);
    const start = Math.floor(Math.random() * this.#servers.length);
    for (let i = 0; i < this.#servers.length; i++) {
      const server = this.#servers[(start + i) % this.#servers.length];
      if (server !== undefined) add(server.host, server.port);
    }
    let last: unknown;
    for (const candidate of candidates) {
      try {
        return await op(await this.#connection(candidate.host, candidate.port));
      } catch (error) {
        if (!isRetriable(error)) throw error;
        last = error;
      }
    }
    throw last instanceof Error ? last : new ConnectionError('no Kafka broker reachable');
  }
}
