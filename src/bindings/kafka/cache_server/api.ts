import type { PartitionStore } from '../cache/index.ts';
import type { Isolation, ProduceOptions, ProduceRecord, ProduceResult } from '../client/index.ts';

/** Where a stream with no progress starts on a topic that is not compacted. */
export type DefaultOffset = 'live' | 'historical';

/** The topic's own config as the cache honours it (from DescribeConfigs, refreshed periodically). */
export interface CachedTopicConfig {
  readonly cleanupPolicy: readonly ('compact' | 'delete')[];
  readonly retentionMs: number;
  readonly retentionBytes: number;
  readonly segmentBytes: number;
  readonly segmentMs: number;
  readonly deleteRetentionMs: number;
  readonly minCompactionLagMs: number;
  readonly maxCompactionLagMs: number;
  readonly maxMessageBytes: number;
}

export type TopicChange =
  /** Records up to `nextOffset - 1` of `partition` are now readable from its store. */
  | { readonly type: 'appended'; readonly partition: number; readonly nextOffset: bigint }
  /** The partition is fetched and its store can be read (it may still be catching up). */
  | { readonly type: 'ready'; readonly partition: number }
  /** The topic grew. */
  | { readonly type: 'partitions'; readonly partitions: readonly number[] }
  /** The cache's head moved past records (retention, broker's log start, topic recreated). */
  | { readonly type: 'truncated'; readonly partition: number; readonly logStartOffset: bigint }
  /** The topic cannot be served (deleted, not authorized, ...); terminal for this attachment. */
  | { readonly type: 'error'; readonly error: Error };

/**
 * One consumer-side attachment to a cached topic. While any attachment is open the cache_server
 * follows the topic live; after the last is released it lingers, then stops fetching (bootstrap
 * topics are followed always). Reading never goes to Kafka: only the stores are read.
 */
export interface CachedTopic {
  readonly topic: string;
  readonly config: CachedTopicConfig;
  readonly compacted: boolean;
  readonly defaultOffset: DefaultOffset;
  /** Partitions known now; `partitions` changes announce new ones. */
  partitions(): readonly number[];
  /** True once the partition's store is being fed (a partition with no leader yet is not ready). */
  isReady(partition: number): boolean;
  /**
   * The offset just past the last record produced to the partition through this cache_server and
   * acknowledged, -1n if none. A read up to "now" waits for the store to reach it as well as the
   * broker's end, so that whoever was answered for a write sees it in a read that follows.
   */
  producedEnd(partition: number): bigint;
  /**
   * The broker's end of each partition now (ListOffsets "latest": the high watermark, or the last
   * stable offset for read_committed). Where a live stream starts on a partition the cache has not
   * fed yet, so that "live" means after the open call rather than after the cache's first fetch.
   * Optional: without it such a partition starts at the cache's head once it is fed.
   */
  endOffsets?(
    partitions: readonly number[],
    isolation: Isolation,
    signal?: AbortSignal,
  ): Promise<ReadonlyMap<number, bigint>>;
  store(partition: number): PartitionStore;
  /** Subscribes to changes; returns the unsubscribe function. Listeners must not throw or block. */
  onChange(listener: (change: TopicChange) => void): () => void;
  release(): void;
}

/** How long a request waits for what it needs of a topic from Kafka, and when it gives up. */
export interface AttachOptions {
  /** The caller left: the wait ends, rejecting with the signal's reason. */
  readonly signal?: AbortSignal;
  /**
   * How long to wait for Kafka (the topic's metadata and config); past it the call rejects with
   * a KafkaWaitError saying what it waited for and why (KGATE_KAFKA_UNAVAILABLE when no broker
   * answers, else KGATE_KAFKA_TIMEOUT). The topic goes on being asked for. Unset: no bound.
   */
  readonly timeoutMs?: number;
}

/** What a cache_server offers to a cache_client (looked up through the engine as its exit). */
export interface CacheServerApi {
  /**
   * Starts following the topic if it is not already; resolves once its metadata is known.
   * Rejects at once while no broker has answered since start (KGATE_KAFKA_UNAVAILABLE).
   */
  attach(topic: string, options?: AttachOptions): Promise<CachedTopic>;
  /**
   * The topic's config for producing to it (max.message.bytes bounds a staged message), without
   * following the topic: a stream that only produces has no use for its records. Rejects like
   * attach() when the topic does not exist. Optional: without it a produce-only stream attaches.
   */
  produceConfig?(topic: string, options?: AttachOptions): Promise<CachedTopicConfig>;
  /**
   * Why no broker of the cluster behind `topic` answers now, if none does (the last connection
   * error); undefined while one does. Optional: without it a cluster is taken to answer.
   */
  unreachable?(topic: string): string | undefined;
  /**
   * Produces through the client kind; `partition` undefined picks one from the key with Kafka's
   * default partitioner (murmur2), so keyed messages land where Java clients put them. The
   * options' `maxBlockMs` bounds every wait before the records are sent (the partition count,
   * then the client's); past it nothing is sent and the call rejects with a KafkaWaitError.
   */
  produce(
    topic: string,
    partition: number | undefined,
    records: readonly ProduceRecord[],
    options?: ProduceOptions,
  ): Promise<ProduceResult & { readonly partition: number }>;
}
