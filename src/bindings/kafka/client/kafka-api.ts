import type { MetadataBroker } from './apis/metadata.ts';
import type { KafkaProtocolError } from './errors.ts';
import type { FetchResult } from './fetcher.ts';
import type { Acks, ProduceResult } from './produce-batch.ts';
import type { Compression, ProduceRecord } from './protocol/records.ts';

export type Isolation = 'read_uncommitted' | 'read_committed';

export interface FetchOptions {
  readonly isolation?: Isolation;
  /** Per-partition bytes per fetch; a larger first batch is still returned whole. */
  readonly maxBytes?: number;
  /** Aborting ends the iteration without an error. */
  readonly signal?: AbortSignal;
  /**
   * The topic id the caller's records belong to. The iteration then reads that incarnation of the
   * topic only: when the cluster has another topic under the name (deleted and created again),
   * none, or no longer the partition, it ends with a TopicGoneError instead of reading on from
   * the same offset in whatever the name now stands for.
   */
  readonly topicId?: string;
}

export interface ProduceOptions {
  /** Default -1 (all in-sync replicas), which also makes the write idempotent. */
  readonly acks?: Acks;
  readonly compression?: Compression;
  /**
   * The topic's max.message.bytes, when the caller knows it: the call is sent in one batch with
   * others only while that batch stays within it (the call's own records were sized to fit).
   */
  readonly maxBatchBytes?: number;
  /**
   * How long the call may wait for what it needs before it can be sent (the partition's leader, a
   * producer id), as Kafka's `max.block.ms` bounds a Java producer's send; past it the call is
   * withdrawn, never sent, and rejects with a KafkaWaitError saying what it waited for and why.
   * What it waited for is still asked for while anyone else needs it. Once sent, the delivery
   * timeout bounds the call instead. Default: no bound.
   */
  readonly maxBlockMs?: number;
  /**
   * Gives the call up while its records are not in a request yet: it rejects with the signal's
   * reason and nothing is written, however long it had waited for a leader. A call already sent
   * is not recalled: it settles with the broker's answer, retried as usual, except that a retry
   * waiting for its leader is dropped too when every call in its batch was given up and one
   * reason (a KGATE_TOPIC_NOT_FOUND code) says the topic or partition is gone, since no sequence
   * of a partition that no longer exists can matter.
   */
  readonly signal?: AbortSignal;
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

/** How the cluster behind a topic is reachable now, for the answers of waits that ran out. */
export interface KafkaReachability {
  /** Some broker has answered since the client started. */
  readonly reached: boolean;
  /**
   * Why no broker answers now (`Kafka not reachable at ...: <last connection error>`) while no
   * broker connection is open and the last attempt failed; undefined otherwise.
   */
  readonly unreachable: string | undefined;
}

/** What other bindings and embedding applications use to talk to Kafka. */
export interface KafkaApi {
  /** Optional: a KafkaApi without it is taken to be reachable. */
  reachability?(topic: string): KafkaReachability;
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
