import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { backoffDelay, sleep } from './backoff.ts';
import { BrokerConnection } from './connection.ts';
import { Api } from './apis/index.ts';
import type { MetadataBroker, MetadataResponse, MetadataTopic } from './apis/metadata.ts';
import {
  ConnectionError,
  isRetriable,
  KafkaClientError,
  KafkaProtocolError,
  messageOf,
  OffsetOutOfRangeError,
} from './errors.ts';
import { BrokerFetcher, type FetchResult, type ProduceActivity } from './fetcher.ts';
import { createClientMetrics, type ClientMetrics } from './metrics.ts';
import {
  type Acks,
  BrokerProducer,
  type ProduceCall,
  type ProducerIdentity,
  type ProduceResult,
  type ProduceUnit,
} from './producer.ts';
import type { Compression, ProduceRecord } from './protocol/records.ts';
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
  /** How long produce() keeps retrying before it gives up. */
  readonly deliveryTimeoutMs?: number;
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

export type Isolation = 'read_uncommitted' | 'read_committed';

export interface FetchOptions {
  readonly isolation?: Isolation;
  /** Per-partition bytes per fetch; a larger first batch is still returned whole. */
  readonly maxBytes?: number;
  /** Aborting ends the iteration without an error. */
  readonly signal?: AbortSignal;
}

export interface ProduceOptions {
  /** Default -1 (all in-sync replicas), which also makes the write idempotent. */
  readonly acks?: Acks;
  readonly compression?: Compression;
}

export type OffsetSpec = 'earliest' | 'latest' | number;

/** Bounds a call that otherwise retries for as long as the error stays retriable. */
export interface CallOptions {
  /** Aborting stops the retries and rejects with a non-retriable error whose cause is the reason. */
  readonly signal?: AbortSignal;
}

export interface PartitionMetadata {
  readonly partition: number;
  readonly leader: number;
  readonly leaderEpoch: number;
  readonly replicas: readonly number[];
  readonly isr: readonly number[];
  readonly offlineReplicas: readonly number[];
  readonly error: KafkaProtocolError | null;
}

export interface TopicMetadata {
  readonly name: string;
  readonly topicId: string;
  readonly internal: boolean;
  readonly error: KafkaProtocolError | null;
  readonly partitions: readonly PartitionMetadata[];
}

export interface ClusterMetadata {
  readonly clusterId: string | null;
  readonly controllerId: number;
  readonly brokers: readonly MetadataBroker[];
  readonly topics: readonly TopicMetadata[];
}

/** What other bindings and embedding applications use to talk to Kafka. */
export interface KafkaApi {
  metadata(topics?: readonly string[], options?: CallOptions): Promise<ClusterMetadata>;
  /** Retries UNKNOWN_TOPIC_OR_PARTITION too (a topic just created), so only a signal bounds it. */
  describeTopicConfigs(topic: string, options?: CallOptions): Promise<Record<string, string>>;
  listOffsets(
    topic: string,
    partition: number,
    spec: OffsetSpec,
    isolation?: Isolation,
    options?: CallOptions,
  ): Promise<bigint>;
  fetch(
    topic: string,
    partition: number,
    fromOffset: bigint,
    options?: FetchOptions,
  ): AsyncIterableIterator<FetchResult>;
  produce(
    topic: string,
    partition: number,
    records: readonly ProduceRecord[],
    options?: ProduceOptions,
  ): Promise<ProduceResult>;
}

const DEFAULTS = {
  clientId: 'kgate',
  connectTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  maxInFlight: 16,
  maxFrameBytes: 256 * 1024 * 1024,
  retryInitialMs: 100,
  retryMaxMs: 5_000,
  deliveryTimeoutMs: 120_000,
  fetchMaxWaitMs: 250,
  fetchMaxWaitProducingMs: 50,
  // Produce this recent keeps fetches from waiting at the broker; they are paced instead, which
  // bounds an idle topic's polling to 1000 / fetchBusyIntervalMs requests per second meanwhile.
  produceActiveWindowMs: 1_000,
  fetchBusyIntervalMs: 5,
  fetchMaxBytes: 50 * 1024 * 1024,
  fetchPartitionMaxBytes: 1024 * 1024,
};

/** The produce activity of a broker no produce has reached yet while some produce call is under way. */
const DISPATCHING: ProduceActivity = { busy: true, lastActiveAt: 0 };

interface TopicState {
  readonly meta: MetadataTopic;
  readonly leaders: Map<number, number>;
}

function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

export function parseServer(server: string): { host: string; port: number } {
  const colon = server.lastIndexOf(':');
  const host = server.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  const port = Number(server.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new Error(`invalid Kafka server "${server}", expected host:port`);
  }
  return { host, port };
}

/**
 * A Kafka client for one cluster: one connection per broker shared by every fetch and produce,
 * leader tracking from cached metadata, and retries of everything retriable.
 */
export class KafkaClient implements KafkaApi {
  readonly #options: KafkaClientOptions;
  readonly #servers: readonly { host: string; port: number }[];
  readonly #log: Logger | undefined;
  readonly #metrics: ClientMetrics;
  readonly #connections = new Map<string, Promise<BrokerConnection>>();
  readonly #everConnected = new Set<string>();
  /** Connections past their handshake and not yet closed. */
  readonly #live = new Set<BrokerConnection>();
  #lastError: string | undefined;
  #probing: Promise<boolean> | undefined;
  #brokers = new Map<number, MetadataBroker>();
  readonly #topics = new Map<string, TopicState>();
  #refreshing: Promise<void> | undefined;
  readonly #fetchers = new Map<string, BrokerFetcher>();
  readonly #producers = new Map<string, BrokerProducer>();
  /** Produce calls still finding their partition's leader, before any BrokerProducer has them. */
  #dispatching = 0;
  #identity: Promise<ProducerIdentity> | undefined;
  readonly #sequences = new Map<string, number>();
  readonly #closing = new AbortController();
  /** Connections opened over the client's life, for tests and diagnostics. */
  connectionsOpened = 0;

  constructor(options: KafkaClientOptions) {
    if (options.servers.length === 0) throw new Error('Kafka client needs at least one server');
    this.#options = options;
    this.#servers = options.servers.map(parseServer);
    this.#log = options.logger;
    this.#metrics = createClientMetrics(
      options.metrics,
      options.name ?? options.clientId ?? DEFAULTS.clientId,
    );
  }

  /** Connects to the cluster once; terminal errors (credentials, TLS trust) reject, outages only log. */
  /**
   * Waits until a bootstrap server answers, retrying with backoff, so that kgate may start before
   * the brokers do; gives up when `signal` aborts (the start deadline) with the last reason.
   * Terminal errors (authentication, TLS) fail at once.
   */
  async start(signal?: AbortSignal): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#refreshMetadata([]);
        return;
      } catch (error) {
        if (!isRetriable(error)) throw error;
        if (signal?.aborted === true) {
          const servers = this.#servers.map((s) => `${s.host}:${s.port}`).join(', ');
          throw new ConnectionError(`Kafka not reachable at ${servers}: ${messageOf(error)}`, {
            cause: error,
          });
        }
        if (attempt === 0) this.#log?.warn({ err: messageOf(error) }, 'Kafka not reachable yet, retrying');
        await sleep(backoffDelay(attempt, { initialMs: 100, maxMs: 2_000 }), signal);
      }
    }
  }

  async close(): Promise<void> {
    this.#closing.abort();
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
    this.#probing ??= this.#anyBroker(() => Promise.resolve(true))
      .catch((error: unknown) => {
        this.#lastError = messageOf(error);
        return false;
      })
      .finally(() => {
        this.#probing = undefined;
      });
    return this.#probing;
  }

  // ---- connections ----------------------------------------------------------------------------

  #connection(host: string, port: number): Promise<BrokerConnection> {
    const address = `${host}:${port}`;
    const existing = this.#connections.get(address);
    if (existing !== undefined) return existing;
    if (this.#closing.signal.aborted) return Promise.reject(new ConnectionError('Kafka client is closed'));
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
    connection.onClose((error) => {
      this.#live.delete(connection);
      if (!this.#closing.signal.aborted) this.#lastError = error.message;
      if (this.#connections.get(address) === opening) this.#connections.delete(address);
      if (!this.#closing.signal.aborted)
        this.#log?.debug({ broker: address, err: error.message }, 'broker connection closed');
    });
    opening.then(
      () => {
        if (!connection.closed) this.#live.add(connection);
        this.#lastError = undefined;
        this.connectionsOpened++;
        this.#metrics.connectionOpened(address, this.#everConnected.has(address));
        this.#everConnected.add(address);
      },
      (error: unknown) => {
        this.#lastError = messageOf(error);
        if (this.#connections.get(address) === opening) this.#connections.delete(address);
      },
    );
    return opening;
  }

  #brokerConnection(nodeId: number): Promise<BrokerConnection> {
    const broker = this.#brokers.get(nodeId);
    if (broker === undefined) {
      return Promise.reject(new KafkaProtocolError(8, `broker ${nodeId} is not in the cluster metadata`));
    }
    return this.#connection(broker.host, broker.port);
  }

  /** Runs `op` on some broker: open connections first, then known brokers, then bootstrap servers. */
  async #anyBroker<T>(op: (connection: BrokerConnection) => Promise<T>): Promise<T> {
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

  async #retry<T>(what: string, op: () => Promise<T>, signal?: AbortSignal, deadline = Infinity): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await op();
      } catch (error) {
        const stop = signal?.aborted === true || this.#closing.signal.aborted || Date.now() >= deadline;
        if (!isRetriable(error) || stop) throw error;
        const delay = backoffDelay(attempt, {
          initialMs: this.#options.retryInitialMs ?? DEFAULTS.retryInitialMs,
          maxMs: this.#options.retryMaxMs ?? DEFAULTS.retryMaxMs,
        });
        this.#log?.debug({ what, attempt, delay: Math.round(delay), err: messageOf(error) }, 'retrying');
        await sleep(Math.min(delay, Math.max(0, deadline - Date.now())), signal);
        // The signal may have aborted during the sleep.
        if (isAborted(signal)) throw error;
        await this.#refreshQuietly();
      }
    }
  }

  /**
   * `#retry` bounded by `signal`: the retries stop, and a request in flight is given up on (its
   * answer, if any, is dropped), so that the caller is not held for a request timeout.
   */
  async #bounded<T>(what: string, op: () => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
    if (signal === undefined) return this.#retry(what, op);
    const aborted = (): KafkaClientError =>
      new KafkaClientError(`${what}: aborted`, false, { cause: signal.reason });
    if (signal.aborted) throw aborted();
    let onAbort: (() => void) | undefined;
    const abort = new Promise<never>((_resolve, reject) => {
      onAbort = () => reject(aborted());
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([this.#retry(what, op, signal), abort]);
    } catch (error) {
      throw signal.aborted ? aborted() : error;
    } finally {
      if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
    }
  }

  // ---- metadata -------------------------------------------------------------------------------

  async metadata(topics?: readonly string[], options: CallOptions = {}): Promise<ClusterMetadata> {
    const response = await this.#bounded(
      'metadata',
      () => this.#fetchMetadata(topics === undefined ? null : topics),
      options.signal,
    );
    this.#absorb(response, false);
    return {
      clusterId: response.clusterId,
      controllerId: response.controllerId,
      brokers: response.brokers,
      topics: response.topics.map((t) => ({
        name: t.name,
        topicId: t.topicId,
        internal: t.internal,
        error: t.errorCode === 0 ? null : new KafkaProtocolError(t.errorCode, `topic ${t.name}`),
        partitions: t.partitions.map((p) => ({
          partition: p.partition,
          leader: p.leader,
          leaderEpoch: p.leaderEpoch,
          replicas: p.replicas,
          isr: p.isr,
          offlineReplicas: p.offlineReplicas,
          error:
            p.errorCode === 0
              ? null
              : new KafkaProtocolError(p.errorCode, `partition ${t.name}-${p.partition}`),
        })),
      })),
    };
  }

  #fetchMetadata(topics: readonly string[] | null): Promise<MetadataResponse> {
    return this.#anyBroker((connection) => connection.request(Api.Metadata, topics));
  }

  #absorb(response: MetadataResponse, replaceBrokers: boolean): void {
    if (response.brokers.length > 0 || replaceBrokers) {
      this.#brokers = new Map(response.brokers.map((b) => [b.nodeId, b]));
    }
    for (const topic of response.topics) {
      const leaders = new Map<number, number>();
      for (const p of topic.partitions) leaders.set(p.partition, p.leader);
      this.#topics.set(topic.name, { meta: topic, leaders });
    }
  }

  /** Refreshes brokers and every topic in use, plus `extra`; concurrent callers share one request. */
  async #refreshMetadata(extra: readonly string[]): Promise<void> {
    const wanted = new Set([...this.#topics.keys(), ...extra]);
    while (this.#refreshing !== undefined) {
      await this.#refreshing.catch(() => undefined);
      if (extra.every((t) => this.#topics.has(t))) return;
    }
    const refreshing = this.#fetchMetadata([...wanted]).then((response) => this.#absorb(response, true));
    this.#refreshing = refreshing;
    try {
      await refreshing;
    } finally {
      this.#refreshing = undefined;
    }
  }

  async #refreshQuietly(): Promise<void> {
    try {
      await this.#refreshMetadata([]);
    } catch (error) {
      if (!isRetriable(error)) throw error;
    }
  }

  async #topic(topic: string): Promise<TopicState> {
    let state = this.#topics.get(topic);
    if (state === undefined) {
      await this.#refreshMetadata([topic]);
      state = this.#topics.get(topic);
    }
    if (state === undefined) throw new KafkaProtocolError(3, `topic ${topic}`);
    if (state.meta.errorCode !== 0) {
      // Forget it so the next attempt asks again.
      this.#topics.delete(topic);
      throw new KafkaProtocolError(state.meta.errorCode, `topic ${topic}`);
    }
    return state;
  }

  async #leader(topic: string, partition: number): Promise<{ nodeId: number; state: TopicState }> {
    const state = await this.#topic(topic);
    const leader = state.leaders.get(partition);
    if (leader === undefined) throw new KafkaProtocolError(3, `partition ${topic}-${partition}`);
    if (leader < 0) throw new KafkaProtocolError(5, `partition ${topic}-${partition}`);
    return { nodeId: leader, state };
  }

  // ---- configs and offsets --------------------------------------------------------------------

  async describeTopicConfigs(topic: string, options: CallOptions = {}): Promise<Record<string, string>> {
    return this.#bounded(
      `describe configs ${topic}`,
      async () => {
        const results = await this.#anyBroker((connection) => connection.request(Api.DescribeConfigs, topic));
        const result = results.find((r) => r.name === topic) ?? results[0];
        if (result === undefined) throw new ConnectionError(`DescribeConfigs for ${topic} came back empty`);
        if (result.errorCode !== 0)
          throw new KafkaProtocolError(result.errorCode, `DescribeConfigs ${topic}`, result.errorMessage);
        const configs: Record<string, string> = {};
        for (const [key, value] of Object.entries(result.configs)) if (value !== null) configs[key] = value;
        return configs;
      },
      options.signal,
    );
  }

  async listOffsets(
    topic: string,
    partition: number,
    spec: OffsetSpec,
    isolation: Isolation = 'read_uncommitted',
    options: CallOptions = {},
  ): Promise<bigint> {
    const timestamp = spec === 'earliest' ? -2n : spec === 'latest' ? -1n : BigInt(spec);
    return this.#bounded(
      `list offsets ${topic}-${partition}`,
      async () => {
        const { nodeId } = await this.#leader(topic, partition);
        const connection = await this.#brokerConnection(nodeId);
        const results = await connection.request(Api.ListOffsets, {
          isolationLevel: isolation === 'read_committed' ? 1 : 0,
          topic,
          partitions: [{ partition, timestamp }],
        });
        const result = results.find((r) => r.topic === topic && r.partition === partition);
        if (result === undefined)
          throw new ConnectionError(`ListOffsets for ${topic}-${partition} came back empty`);
        if (result.errorCode !== 0) {
          throw new KafkaProtocolError(
            result.errorCode,
            `ListOffsets ${topic}-${partition} on ${connection.address}`,
          );
        }
        return result.offset;
      },
      options.signal,
    );
  }

  // ---- fetch ----------------------------------------------------------------------------------

  #fetcher(nodeId: number, isolation: 0 | 1): BrokerFetcher {
    const key = `${nodeId}:${isolation}`;
    let fetcher = this.#fetchers.get(key);
    if (fetcher === undefined) {
      fetcher = new BrokerFetcher(
        () => this.#brokerConnection(nodeId),
        isolation,
        {
          maxWaitMs: this.#options.fetchMaxWaitMs ?? DEFAULTS.fetchMaxWaitMs,
          producingWaitMs: this.#options.fetchMaxWaitProducingMs ?? DEFAULTS.fetchMaxWaitProducingMs,
          activeWindowMs: DEFAULTS.produceActiveWindowMs,
          busyIntervalMs: DEFAULTS.fetchBusyIntervalMs,
          minBytes: 1,
          maxBytes: this.#options.fetchMaxBytes ?? DEFAULTS.fetchMaxBytes,
        },
        // Fetcher and producer of one broker share its one connection. A produce still looking up
        // its leader counts as produce on every broker: its Metadata, InitProducerId and Produce
        // requests would otherwise each queue behind a Fetch the broker holds for the full wait.
        () => this.#producers.get(String(nodeId)) ?? (this.#dispatching > 0 ? DISPATCHING : undefined),
      );
      this.#fetchers.set(key, fetcher);
    }
    return fetcher;
  }

  /**
   * Results for one partition from `fromOffset` on. The next Fetch for the partition is sent only
   * when the previous result has been taken, so a slow consumer slows its fetches instead of
   * growing a buffer. Results with no records are skipped unless the watermarks moved.
   */
  async *fetch(
    topic: string,
    partition: number,
    fromOffset: bigint,
    options: FetchOptions = {},
  ): AsyncIterableIterator<FetchResult> {
    const isolation: 0 | 1 = options.isolation === 'read_committed' ? 1 : 0;
    const maxBytes = options.maxBytes ?? DEFAULTS.fetchPartitionMaxBytes;
    const signal =
      options.signal === undefined
        ? this.#closing.signal
        : AbortSignal.any([options.signal, this.#closing.signal]);
    let offset = fromOffset;
    let highWatermark = -2n;
    let lastStableOffset = -2n;
    while (!signal.aborted) {
      let result: FetchResult | null;
      try {
        result = await this.#retry(
          `fetch ${topic}-${partition}`,
          async () => {
            const { nodeId, state } = await this.#leader(topic, partition);
            return this.#fetcher(nodeId, isolation).next(
              topic,
              state.meta.topicId,
              partition,
              offset,
              maxBytes,
              signal,
            );
          },
          signal,
        );
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof KafkaProtocolError && error.code === 1)
          throw await this.#outOfRange(topic, partition, offset, error, signal);
        throw error;
      }
      if (result === null) return;
      offset = result.nextOffset;
      const moved = result.highWatermark !== highWatermark || result.lastStableOffset !== lastStableOffset;
      highWatermark = result.highWatermark;
      lastStableOffset = result.lastStableOffset;
      if (result.batches.length === 0 && !moved) continue;
      yield result;
    }
  }

  async #outOfRange(
    topic: string,
    partition: number,
    offset: bigint,
    cause: KafkaProtocolError,
    signal: AbortSignal,
  ): Promise<Error> {
    try {
      // Bounded by the fetch's signal: a topic deleted meanwhile would be retried for ever.
      const [earliest, latest] = await Promise.all([
        this.listOffsets(topic, partition, 'earliest', undefined, { signal }),
        this.listOffsets(topic, partition, 'latest', undefined, { signal }),
      ]);
      return new OffsetOutOfRangeError(topic, partition, offset, earliest, latest);
    } catch {
      return cause;
    }
  }

  // ---- produce --------------------------------------------------------------------------------

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
      const call: ProduceCall = {
        topic,
        partition,
        records,
        acks: options.acks ?? -1,
        compression: options.compression ?? 'none',
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
      const { nodeId } = await this.#retry(
        `produce ${unit.topic}-${unit.partition}`,
        () => this.#leader(unit.topic, unit.partition),
        undefined,
        unit.deadline,
      );
      this.#producer(nodeId).send(unit);
    } catch (error) {
      for (const call of unit.calls) call.reject(error instanceof Error ? error : new Error(String(error)));
    } finally {
      this.#dispatching--;
    }
  }

  #producer(nodeId: number): BrokerProducer {
    const key = String(nodeId);
    let producer = this.#producers.get(key);
    if (producer === undefined) {
      producer = new BrokerProducer({
        connect: () => this.#brokerConnection(nodeId),
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
    if (error instanceof KafkaProtocolError && [45, 47, 59].includes(error.code)) {
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
    if (!isRetriable(error) || this.#closing.signal.aborted || Date.now() >= deadline) {
      reject(error);
      return;
    }
    const delay = backoffDelay(unit.attempts++, {
      initialMs: this.#options.retryInitialMs ?? DEFAULTS.retryInitialMs,
      maxMs: this.#options.retryMaxMs ?? DEFAULTS.retryMaxMs,
    });
    this.#log?.debug(
      { topic: unit.topic, partition: unit.partition, err: error.message, delay },
      'produce retry',
    );
    await sleep(delay, this.#closing.signal);
    try {
      await this.#refreshQuietly();
    } catch (failure) {
      reject(failure instanceof Error ? failure : new Error(String(failure)));
      return;
    }
    await this.#dispatch(unit);
  }

  #producerIdentity(): Promise<ProducerIdentity> {
    if (this.#identity === undefined) {
      const pending = this.#retry('init producer id', async () => {
        const result = await this.#anyBroker((connection) =>
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

export { KafkaClientError };
