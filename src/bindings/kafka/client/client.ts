import type { Logger } from 'pino';
import { backoffDelay, sleep } from './backoff.ts';
import { BrokerPool, parseServer } from './broker-pool.ts';
import { Api } from './apis/index.ts';
import {
  ConnectionError,
  isRetriable,
  KafkaProtocolError,
  KafkaWaitError,
  type KafkaWaitKind,
  messageOf,
} from './errors.ts';
import { FetchRouter } from './fetch-router.ts';
import type { FetchResult } from './fetcher.ts';
import type {
  CallOptions,
  ClusterMetadata,
  FetchOptions,
  Isolation,
  KafkaApi,
  KafkaReachability,
  OffsetSpec,
  ProduceOptions,
} from './kafka-api.ts';
import { clusterMetadataOf, MetadataCache } from './metadata-cache.ts';
import { createClientMetrics } from './metrics.ts';
import { DEFAULTS, type KafkaClientOptions } from './options.ts';
import { ProduceRouter } from './produce-router.ts';
import type { ProduceResult } from './produce-batch.ts';
import type { ProduceRecord } from './protocol/records.ts';
import { Retrier } from './retry.ts';
import { TopicQueries } from './topic-queries.ts';

/**
 * A Kafka client for one cluster: one connection per broker shared by every fetch and produce
 * (BrokerPool), leader tracking from cached metadata (MetadataCache), and retries of everything
 * retriable (Retrier). Reading and writing partitions go through FetchRouter and ProduceRouter.
 */
export class KafkaClient implements KafkaApi {
  readonly #log: Logger | undefined;
  readonly #pool: BrokerPool;
  readonly #metadata: MetadataCache;
  readonly #retrier: Retrier;
  readonly #queries: TopicQueries;
  readonly #fetches: FetchRouter;
  readonly #produces: ProduceRouter;
  readonly #closing = new AbortController();

  constructor(options: KafkaClientOptions) {
    if (options.servers.length === 0) throw new Error('Kafka client needs at least one server');
    const servers = options.servers.map(parseServer);
    this.#log = options.logger;
    const metrics = createClientMetrics(
      options.metrics,
      options.name ?? options.clientId ?? DEFAULTS.clientId,
    );
    const closing = this.#closing.signal;
    this.#pool = new BrokerPool({ options, servers, metrics, log: this.#log, closing });
    const metadata = new MetadataCache(this.#pool);
    this.#metadata = metadata;
    const retrier = new Retrier({
      options,
      log: this.#log,
      closing,
      refresh: () => metadata.refreshQuietly(),
    });
    this.#retrier = retrier;
    this.#queries = new TopicQueries(this.#pool, metadata, retrier);
    const pool = this.#pool;
    this.#produces = new ProduceRouter({
      options,
      connect: (nodeId) => pool.brokerConnection(nodeId),
      leader: async (topic, partition) => (await metadata.leader(topic, partition)).nodeId,
      refresh: () => metadata.refreshQuietly(),
      initProducerId: () =>
        retrier.retry('init producer id', async () => {
          const result = await pool.anyBroker((connection) =>
            connection.request(Api.InitProducerId, undefined),
          );
          if (result.errorCode !== 0) throw new KafkaProtocolError(result.errorCode, 'InitProducerId');
          return { producerId: result.producerId, epoch: result.producerEpoch };
        }),
      metrics: metrics.produce,
      log: this.#log,
      closing,
    });
    this.#fetches = new FetchRouter({
      options,
      pool: this.#pool,
      metadata,
      retrier,
      queries: this.#queries,
      closing,
      produceActivity: (nodeId) => this.#produces.activity(nodeId),
    });
  }

  /**
   * Waits until a bootstrap server answers, retrying with backoff, so that kgate may start before
   * the brokers do; gives up when `signal` aborts (the start deadline) with the last reason.
   * Terminal errors (authentication, TLS) fail at once.
   */
  async start(signal?: AbortSignal): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#metadata.refresh([]);
        return;
      } catch (error) {
        if (!isRetriable(error)) throw error;
        if (signal?.aborted === true) {
          throw new ConnectionError(
            `Kafka not reachable at ${this.#pool.bootstrapServers}: ${messageOf(error)}`,
            {
              cause: error,
            },
          );
        }
        if (attempt === 0) this.#log?.warn({ err: error }, 'Kafka not reachable yet, retrying');
        await sleep(backoffDelay(attempt, { initialMs: 100, maxMs: 2_000 }), signal);
      }
    }
  }

  async close(): Promise<void> {
    this.#closing.abort();
    this.#produces.close();
    await this.#pool.close();
  }

  /** Connections opened over the client's life, for tests and diagnostics. */
  get connectionsOpened(): number {
    return this.#pool.connectionsOpened;
  }

  /** Open connections by broker address. */
  openConnections(): string[] {
    return this.#pool.openConnections();
  }

  /** Whether some broker connection is open right now. */
  isConnected(): boolean {
    return this.#pool.isConnected();
  }

  /** Why the most recent connection attempt or open connection failed; cleared by the next success. */
  get lastError(): string | undefined {
    return this.#pool.lastError;
  }

  /** Connects to some broker unless a connection is already open, and says whether one is open then. */
  probe(): Promise<boolean> {
    return this.#pool.probe();
  }

  async metadata(topics?: readonly string[], options: CallOptions = {}): Promise<ClusterMetadata> {
    const response = await this.#retrier.bounded(
      'metadata',
      () => this.#metadata.request(topics === undefined ? null : topics),
      options.signal,
    );
    this.#metadata.absorb(response, false);
    return clusterMetadataOf(response);
  }

  describeTopicConfigs(topic: string, options?: CallOptions): Promise<Record<string, string>> {
    return this.#queries.describeTopicConfigs(topic, options);
  }

  listOffsets(
    topic: string,
    partition: number,
    spec: OffsetSpec,
    isolation?: Isolation,
    options?: CallOptions,
  ): Promise<bigint> {
    return this.#queries.listOffsets(topic, partition, spec, isolation, options);
  }

  /** See FetchRouter.fetch: pull-driven, one result per partition at a time. */
  fetch(
    topic: string,
    partition: number,
    fromOffset: bigint,
    options?: FetchOptions,
  ): AsyncIterableIterator<FetchResult> {
    return this.#fetches.fetch(topic, partition, fromOffset, options);
  }

  async produce(
    topic: string,
    partition: number,
    records: readonly ProduceRecord[],
    options: ProduceOptions = {},
  ): Promise<ProduceResult> {
    if (options.maxBlockMs !== undefined || options.signal !== undefined)
      await this.#readyToSend(topic, partition, options);
    return this.#produces.produce(topic, partition, records, options);
  }

  /**
   * Waits, within the call's maxBlockMs and signal, for what a produce to the partition needs
   * before it is queued, so that a call given up on is never sent: the caller was told it was not
   * written. Past maxBlockMs it rejects with why; on the signal, with the signal's reason.
   */
  async #readyToSend(topic: string, partition: number, options: ProduceOptions): Promise<void> {
    const { maxBlockMs, signal } = options;
    const deadline = maxBlockMs === undefined ? undefined : AbortSignal.timeout(Math.max(0, maxBlockMs));
    const stop = AbortSignal.any([signal, deadline].filter((s): s is AbortSignal => s !== undefined));
    let waitingFor: KafkaWaitKind = 'leader';
    try {
      await this.#produces.prepare(topic, partition, options.acks ?? -1, stop, (what) => {
        waitingFor = what;
      });
    } catch (error) {
      if (deadline?.aborted !== true || signal?.aborted === true) throw error;
      const subject = waitingFor === 'leader' ? `${topic}-${partition}` : undefined;
      throw new KafkaWaitError(waitingFor, subject, maxBlockMs ?? 0, this.reachability().unreachable);
    }
  }

  /** Whether a broker answered since the client started, and why none answers now if so. */
  reachability(): KafkaReachability {
    const lastError = this.#pool.lastError;
    return {
      reached: this.#pool.connectionsOpened > 0,
      unreachable:
        this.#pool.isConnected() || lastError === undefined
          ? undefined
          : `Kafka not reachable at ${this.#pool.bootstrapServers}: ${lastError}`,
    };
  }

  /** The bootstrap servers, for messages. */
  get bootstrapServers(): string {
    return this.#pool.bootstrapServers;
  }

  /**
   * One attempt to reach a broker: resolves once a connection to one is open (handshake and
   * authentication done), rejects with why not.
   */
  async connect(): Promise<void> {
    await this.#pool.anyBroker(() => Promise.resolve());
  }
}
