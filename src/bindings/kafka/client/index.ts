import type { Logger } from 'pino';
import type { BindingConfig, RouteTable } from '../../../config/index.ts';
import type { Binding, BindingContext, BindingFactory } from '../../../engine/binding.ts';
import { KafkaClient } from './client.ts';
import { clientBindingOptions, resolveTransport } from './config.ts';
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
import type { ProduceResult } from './produce-batch.ts';
import type { ProduceRecord } from './protocol/records.ts';
import { failedAddress, Reach } from './reach.ts';
import { zillaEvents } from '../../../telemetry/events.ts';
import { topicRoutes, type TopicCondition } from '../topic-conditions.ts';

export { KafkaClient } from './client.ts';
export type {
  CallOptions,
  ClusterMetadata,
  FetchOptions,
  Isolation,
  KafkaApi,
  KafkaReachability,
  OffsetSpec,
  PartitionMetadata,
  ProduceOptions,
  TopicMetadata,
} from './kafka-api.ts';
export type { KafkaClientOptions } from './options.ts';
export { type BackoffOptions, backoffDelay, sleep } from './backoff.ts';
export type { FetchResult } from './fetcher.ts';
export type { Acks, ProduceResult } from './produce-batch.ts';
export type {
  Compression,
  KafkaRecord,
  ProduceRecord,
  RecordBatch,
  RecordHeader,
} from './protocol/records.ts';
export { largestSingleRecordValue, singleRecordBatchSize } from './protocol/records.ts';
export type { RecordEnvelope } from './protocol/records.ts';
export type { PasswordMechanism, SaslConfig, SaslMechanism } from './sasl.ts';
export {
  AuthenticationError,
  ConnectionError,
  KafkaClientError,
  KafkaProtocolError,
  KafkaWaitError,
  type KafkaWaitKind,
  MalformedResponseError,
  OffsetOutOfRangeError,
  ProduceOutcomeUnknownError,
  TlsError,
  TopicGoneError,
  UnsupportedVersionError,
} from './errors.ts';

/** A started binding's config, when it exposes one (tcp and tls client bindings do). */
function configOfBinding(binding: Binding): BindingConfig | undefined {
  const config: unknown = (binding as Binding & { config?: unknown }).config;
  if (typeof config !== 'object' || config === null) return undefined;
  const candidate = config as Partial<BindingConfig>;
  return typeof candidate.type === 'string' && typeof candidate.options === 'object'
    ? (config as BindingConfig)
    : undefined;
}

/**
 * The `kafka client` binding: one KafkaClient per distinct exit, topics routed to them by the
 * binding's routes (first match wins, then the default exit).
 */
export class KafkaClientBinding implements Binding, KafkaApi {
  readonly name: string;
  readonly #config: BindingConfig;
  readonly #routes: RouteTable<string, TopicCondition>;
  readonly #context: BindingContext;
  readonly #log: Logger;
  readonly #clients = new Map<string, KafkaClient>();
  readonly #reaches = new Map<KafkaClient, Reach>();
  #stopping = new AbortController();
  #default: KafkaClient | undefined;
  /** Exposed so bindings chained behind this one can read its options. */
  readonly config: BindingConfig;

  constructor(context: BindingContext) {
    this.#context = context;
    this.#config = context.config;
    this.#routes = topicRoutes(context.config);
    this.config = context.config;
    this.name = context.config.name;
    this.#log = context.logger;
  }

  async start(_signal: AbortSignal): Promise<void> {
    const settings = clientBindingOptions(this.#config.options, this.#config.guards);
    const exits = new Set<string | undefined>([this.#config.exit, ...this.#config.routes.map((r) => r.exit)]);
    const configOf = (name: string): BindingConfig | undefined => {
      try {
        return configOfBinding(this.#context.lookup(name));
      } catch (error) {
        this.#log.warn({ exit: name, err: error }, 'exit binding not available; connecting directly');
        return undefined;
      }
    };
    for (const exit of exits) {
      const transport = resolveTransport(settings.servers, exit, configOf);
      const client = new KafkaClient({
        servers: transport.servers,
        tls: transport.tls,
        sasl: settings.sasl,
        ...(settings.deliveryTimeoutMs === undefined
          ? {}
          : { deliveryTimeoutMs: settings.deliveryTimeoutMs }),
        clientId: `kgate-${this.name}`,
        logger: this.#log,
        metrics: this.#context.metrics,
        name: this.name,
      });
      this.#clients.set(exit ?? '', client);
    }
    this.#default = this.#clients.get(this.#config.exit ?? '');
    // Configured is started: the brokers are tried in the background for as long as it takes, and
    // the bindings behind this one bound each wait on them by their own deadlines, so that kgate
    // listens, and says why it cannot serve yet, while Kafka is still on its way.
    this.#stopping = new AbortController();
    const events = zillaEvents(this.#context.metrics);
    for (const client of this.#clients.values()) {
      const failed = (error: unknown): void => {
        if (!events.enabled) return;
        const { host, port } = failedAddress(error, client.bootstrapServers);
        events.brokerConnectionFailed(this.name, host, port);
      };
      this.#reaches.set(client, new Reach(client, this.#log, this.#stopping.signal, failed));
    }
  }

  /**
   * Resolves once a broker of every cluster behind this binding has answered. Rejects when
   * `signal` aborts first, with why (`Kafka not reachable at ...: <last error>`), and at once while
   * a broker refuses kgate's credentials or certificate.
   */
  async ready(signal: AbortSignal): Promise<void> {
    await Promise.all([...this.#reaches.values()].map((reach) => reach.until(signal)));
  }

  async stop(_signal: AbortSignal): Promise<void> {
    this.#stopping.abort();
    this.#reaches.clear();
    await this.#closeAll();
  }

  /**
   * Whether the cluster serving `topic` has answered since start, and why no broker of it answers
   * now, if none does. A cluster not reached yet whose first attempt failed is unreachable even
   * while a connection is being tried again.
   */
  reachability(topic: string): KafkaReachability {
    const client = this.client(topic);
    const now = client.reachability();
    // Any connection counts, not only the background attempts': a request's own may come first.
    const reached = now.reached || this.#reaches.get(client)?.reached === true;
    return { reached, unreachable: now.unreachable };
  }

  async #closeAll(): Promise<void> {
    await Promise.all([...this.#clients.values()].map((client) => client.close()));
  }

  /**
   * Why some cluster behind this binding has no live broker connection, after trying to open one;
   * undefined when every cluster has one.
   */
  async connectionProblem(): Promise<string | undefined> {
    if (this.#clients.size === 0) return 'not started';
    for (const client of this.#clients.values()) {
      if (!(await client.probe())) return client.lastError ?? 'no broker connection';
    }
    return undefined;
  }

  /** The client serving `topic`. */
  client(topic?: string): KafkaClient {
    const exit = topic === undefined ? this.#routes.defaultExit : this.#routes.exitFor(topic);
    const client = this.#clients.get(exit ?? '') ?? this.#default;
    if (client === undefined) throw new Error(`binding ${this.name} is not started`);
    return client;
  }

  async metadata(topics?: readonly string[], options?: CallOptions): Promise<ClusterMetadata> {
    if (topics === undefined || topics.length === 0) return this.client().metadata(topics, options);
    const groups = new Map<KafkaClient, string[]>();
    for (const topic of topics) {
      const client = this.client(topic);
      groups.set(client, [...(groups.get(client) ?? []), topic]);
    }
    const results = await Promise.all([...groups].map(([client, names]) => client.metadata(names, options)));
    const first = results[0];
    if (first === undefined) return this.client().metadata(topics, options);
    return { ...first, topics: results.flatMap((r) => r.topics) };
  }

  describeTopicConfigs(topic: string, options?: CallOptions): Promise<Record<string, string>> {
    return this.client(topic).describeTopicConfigs(topic, options);
  }

  listOffsets(
    topic: string,
    partition: number,
    spec: OffsetSpec,
    isolation?: Isolation,
    options?: CallOptions,
  ): Promise<bigint> {
    return this.client(topic).listOffsets(topic, partition, spec, isolation, options);
  }

  fetch(
    topic: string,
    partition: number,
    fromOffset: bigint,
    options?: FetchOptions,
  ): AsyncIterableIterator<FetchResult> {
    return this.client(topic).fetch(topic, partition, fromOffset, options);
  }

  produce(
    topic: string,
    partition: number,
    records: readonly ProduceRecord[],
    options?: ProduceOptions,
  ): Promise<ProduceResult> {
    return this.client(topic).produce(topic, partition, records, options);
  }
}

export const createKafkaClientBinding: BindingFactory = (context) => new KafkaClientBinding(context);
