/** Public shape of the embedded Kafka used by tests and by `kgate demo`. */
export type ListenerName = 'PLAINTEXT' | 'SASL_PLAINTEXT' | 'SSL' | 'OAUTHBEARER';

export interface Credentials {
  readonly username: string;
  readonly password: string;
}

export interface KafkaClusterOptions {
  /** 1 (default) or 3 brokers; with 3, topics default to replication factor 3. */
  readonly brokers?: 1 | 3;
  /** Directory for data and logs; a fresh temporary directory when omitted. */
  readonly dir?: string;
  /** Print broker output to stderr (debugging). */
  readonly verbose?: boolean;
  /**
   * Broker properties set over the defaults, e.g. `auto.create.topics.enable: true` to show that
   * kgate creates no topic even where the broker would.
   */
  readonly brokerProperties?: Readonly<Record<string, string | number | boolean>>;
}

export interface TopicSpec {
  readonly partitions?: number;
  readonly replicationFactor?: number;
  readonly configs?: Readonly<Record<string, string>>;
}

export interface ProducedMessage {
  readonly key?: string | Buffer | null;
  readonly value: string | Buffer | null;
  readonly partition?: number;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface KafkaCluster {
  /** Comma-separated host:port list of the PLAINTEXT listeners. */
  readonly bootstrap: string;
  /** SASL_PLAINTEXT listeners (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512). */
  readonly saslBootstrap: string;
  /**
   * SASL_PLAINTEXT listeners taking OAUTHBEARER only, with Kafka's unsecured validator: any unsigned
   * (`alg: none`) token with a `sub` and an unexpired `exp` (see `unsecuredToken`).
   */
  readonly oauthBootstrap: string;
  /** SSL listeners, certificates signed by `caFile`. */
  readonly sslBootstrap: string;
  /** PEM file of the test CA that signed the brokers' certificates. */
  readonly caFile: string;
  readonly users: {
    readonly plain: Credentials;
    readonly scram256: Credentials;
    readonly scram512: Credentials;
  };
  readonly brokerIds: readonly number[];
  /** Where the cluster keeps data, logs (`node-<id>/server.log`) and TLS material. */
  readonly dir: string;
  /** host:port of one broker's listener, e.g. to talk to a single node of a cluster. */
  brokerBootstrap(id: number, listener?: ListenerName): string;
  /** The broker's log file, for diagnosing a failing test. */
  logFile(id: number): string;
  /** Leader broker id of each partition of `topic`, indexed by partition. */
  partitionLeaders(topic: string): Promise<number[]>;
  createTopic(name: string, spec?: TopicSpec): Promise<void>;
  deleteTopic(name: string): Promise<void>;
  /** Grows the topic to `count` partitions (kafka-topics --alter --partitions). */
  createPartitions(name: string, count: number): Promise<void>;
  /** Produces with kcat (librdkafka), a client kgate did not write. */
  produce(topic: string, messages: readonly ProducedMessage[]): Promise<void>;
  deleteRecords(topic: string, partition: number, beforeOffset: bigint): Promise<void>;
  /**
   * Stops one broker cleanly (SIGTERM: it hands its leaderships over first), and waits until the
   * others no longer list it.
   */
  stopBroker(id: number): Promise<void>;
  /**
   * Kills one broker (SIGKILL, kill -9): requests in flight get no answer and its leaderships
   * move only once the controller misses its heartbeats. Returns once the process is gone.
   */
  killBroker(id: number): Promise<void>;
  startBroker(id: number): Promise<void>;
  stop(): Promise<void>;
}
