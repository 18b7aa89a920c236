import type { BrokerPool } from './broker-pool.ts';
import { KafkaProtocolError, namesMissingTopic, OffsetOutOfRangeError, TopicGoneError } from './errors.ts';
import { BrokerFetcher, type FetchResult, type ProduceActivity } from './fetcher.ts';
import type { FetchOptions } from './kafka-api.ts';
import type { MetadataCache } from './metadata-cache.ts';
import { DEFAULTS, type KafkaClientOptions } from './options.ts';
import type { Retrier } from './retry.ts';
import type { TopicQueries } from './topic-queries.ts';

export interface FetchRouterSettings {
  readonly options: KafkaClientOptions;
  readonly pool: BrokerPool;
  readonly metadata: MetadataCache;
  readonly retrier: Retrier;
  readonly queries: TopicQueries;
  /** Aborted when the client closes: every fetch iteration ends then. */
  readonly closing: AbortSignal;
  /** The produce traffic on broker `nodeId`'s connection; undefined while there has been none. */
  readonly produceActivity: (nodeId: number) => ProduceActivity | undefined;
}

/**
 * Reads partitions: each partition's fetches go to the BrokerFetcher of its leader (one per broker
 * and isolation level), retried across leader changes for as long as the caller reads.
 */
export class FetchRouter {
  readonly #options: KafkaClientOptions;
  readonly #pool: BrokerPool;
  readonly #metadata: MetadataCache;
  readonly #retrier: Retrier;
  readonly #queries: TopicQueries;
  readonly #closing: AbortSignal;
  readonly #produceActivity: (nodeId: number) => ProduceActivity | undefined;
  readonly #fetchers = new Map<string, BrokerFetcher>();

  constructor(settings: FetchRouterSettings) {
    this.#options = settings.options;
    this.#pool = settings.pool;
    this.#metadata = settings.metadata;
    this.#retrier = settings.retrier;
    this.#queries = settings.queries;
    this.#closing = settings.closing;
    this.#produceActivity = settings.produceActivity;
  }

  #fetcher(nodeId: number, isolation: 0 | 1): BrokerFetcher {
    const key = `${nodeId}:${isolation}`;
    let fetcher = this.#fetchers.get(key);
    if (fetcher === undefined) {
      fetcher = new BrokerFetcher(
        () => this.#pool.brokerConnection(nodeId),
        isolation,
        {
          maxWaitMs: this.#options.fetchMaxWaitMs ?? DEFAULTS.fetchMaxWaitMs,
          producingWaitMs: this.#options.fetchMaxWaitProducingMs ?? DEFAULTS.fetchMaxWaitProducingMs,
          activeWindowMs: DEFAULTS.produceActiveWindowMs,
          busyIntervalMs: DEFAULTS.fetchBusyIntervalMs,
          minBytes: 1,
          maxBytes: this.#options.fetchMaxBytes ?? DEFAULTS.fetchMaxBytes,
        },
        // Fetcher and producer of one broker share its one connection.
        () => this.#produceActivity(nodeId),
      );
      this.#fetchers.set(key, fetcher);
    }
    return fetcher;
  }

  /**
   * Results for one partition from `fromOffset` on. The next Fetch for the partition is sent only
   * when the previous result has been taken, so a slow consumer slows its fetches instead of
   * growing a buffer. Results with no records are skipped unless the watermarks or the log start
   * moved.
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
      options.signal === undefined ? this.#closing : AbortSignal.any([options.signal, this.#closing]);
    const pinned = options.topicId;
    let offset = fromOffset;
    let highWatermark = -2n;
    let lastStableOffset = -2n;
    let logStartOffset = -2n;
    while (!signal.aborted) {
      let result: FetchResult | null;
      try {
        result = await this.#retrier.retry(
          `fetch ${topic}-${partition}`,
          async () => {
            try {
              const { nodeId, state } = await this.#metadata.leader(topic, partition);
              // The metadata refreshed between attempts may name a topic created again under the
              // same name: reading on from this offset would mix its records with the old ones.
              if (pinned !== undefined && state.meta.topicId !== pinned)
                throw new TopicGoneError(
                  topic,
                  partition,
                  `topic id is ${state.meta.topicId}, not ${pinned}`,
                );
              return await this.#fetcher(nodeId, isolation).next(
                topic,
                state.meta.topicId,
                partition,
                offset,
                maxBytes,
                signal,
              );
            } catch (error) {
              if (pinned !== undefined && namesMissingTopic(error))
                throw new TopicGoneError(topic, partition, error.message, { cause: error });
              throw error;
            }
          },
          signal,
        );
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof KafkaProtocolError && error.brokerCode === 1)
          throw await this.#outOfRange(topic, partition, offset, error, signal);
        throw error;
      }
      if (result === null) return;
      offset = result.nextOffset;
      // A log start that moved is news as well: on an idle partition it is the only sign that the
      // broker deleted its head (retention, deleteRecords).
      const moved =
        result.highWatermark !== highWatermark ||
        result.lastStableOffset !== lastStableOffset ||
        result.logStartOffset !== logStartOffset;
      highWatermark = result.highWatermark;
      lastStableOffset = result.lastStableOffset;
      logStartOffset = result.logStartOffset;
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
        this.#queries.listOffsets(topic, partition, 'earliest', undefined, { signal }),
        this.#queries.listOffsets(topic, partition, 'latest', undefined, { signal }),
      ]);
      return new OffsetOutOfRangeError(topic, partition, offset, earliest, latest);
    } catch {
      return cause;
    }
  }
}
