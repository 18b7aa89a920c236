import { sleep } from './backoff.ts';
import type { BrokerConnection } from './connection.ts';
import { ConnectionError, KafkaClientError, KafkaProtocolError, MalformedResponseError } from './errors.ts';
import { Api } from './apis/index.ts';
import type { FetchPartitionResponse, FetchResponse, FetchTopicRequest } from './apis/fetch.ts';
import { ZERO_UUID } from './protocol/reader.ts';
import { decodeBatches, dropAborted, type RecordBatch } from './protocol/records.ts';

export interface FetchResult {
  readonly topic: string;
  readonly partition: number;
  readonly highWatermark: bigint;
  readonly lastStableOffset: bigint;
  readonly logStartOffset: bigint;
  /** Complete batches from the fetch offset on; with read_committed, aborted batches are gone. */
  readonly batches: readonly RecordBatch[];
  /** Where the next fetch of this partition starts. */
  readonly nextOffset: bigint;
}

export interface FetchSettings {
  /** How long the broker may hold a Fetch for data on a connection that carries no produce. */
  readonly maxWaitMs: number;
  /** The same bound once the connection carries produce: the first produce after a quiet spell waits up to this. */
  readonly producingWaitMs: number;
  /** Produce activity this recent keeps fetches short (no broker wait, paced by `busyIntervalMs`). */
  readonly activeWindowMs: number;
  /** Least time between the starts of two fetches while produce is active. */
  readonly busyIntervalMs: number;
  readonly minBytes: number;
  readonly maxBytes: number;
}

/** What the fetcher needs to know of the produce traffic sharing its connection. */
export interface ProduceActivity {
  /** Produce work is queued or awaiting its answer. */
  readonly busy: boolean;
  /** `Date.now()` when produce work was last queued or answered. */
  readonly lastActiveAt: number;
}

/** A partition waiting for its next fetch result. */
interface Demand {
  readonly topic: string;
  readonly topicId: string;
  readonly partition: number;
  readonly offset: bigint;
  readonly maxBytes: number;
  readonly signal: AbortSignal | undefined;
  readonly resolve: (result: FetchResult | null) => void;
  readonly reject: (error: Error) => void;
  onAbort: (() => void) | undefined;
}

/**
 * Fetches for every partition led by one broker at one isolation level. Brokers answer requests of
 * a connection one at a time, so one Fetch per partition would make each partition wait out every
 * other partition's long poll; instead every partition whose consumer is waiting goes into one
 * Fetch request. A partition is asked for again only once its consumer has taken the previous
 * result, which bounds what is buffered to one response per partition.
 *
 * The same holds for produce on the shared connection: a Produce written behind a Fetch the broker
 * is holding waits out that Fetch. So the broker's wait depends on the produce traffic: the full
 * long poll on a connection that never carried produce; a shorter one once it has; and none while
 * produce is active, the fetches then being paced instead so that an idle topic is not polled in a
 * tight loop.
 */
export class BrokerFetcher {
  readonly #connect: () => Promise<BrokerConnection>;
  readonly #isolation: 0 | 1;
  readonly #settings: FetchSettings;
  readonly #produce: () => ProduceActivity | undefined;
  /** The connection of the latest round, whose other traffic shortens the next fetch's wait. */
  #connection: BrokerConnection | undefined;
  #queue: Demand[] = [];
  /** `Date.now()` when the last Fetch went out, for pacing while produce is active. */
  #lastSentAt = -Infinity;
  #running = false;
  /** Partitions that got only a partial batch last time; put first so the broker sends one whole batch. */
  readonly #starved = new Set<string>();

  /** `produce` reports the produce traffic on the same connection; undefined while there has been none. */
  constructor(
    connect: () => Promise<BrokerConnection>,
    isolation: 0 | 1,
    settings: FetchSettings,
    produce: () => ProduceActivity | undefined = () => undefined,
  ) {
    this.#connect = connect;
    this.#isolation = isolation;
    this.#settings = settings;
    this.#produce = produce;
  }

  /** How long the broker may hold the next Fetch; 0 while produce or other requests are active. */
  waitMs(now = Date.now()): number {
    // Metadata, DescribeConfigs, InitProducerId and the like come in chains, each sent when the
    // last is answered: a Fetch held at the broker between two of them would delay the next.
    const connection = this.#connection;
    if (
      connection !== undefined &&
      (connection.othersPending > 0 || now - connection.othersActiveAt < this.#settings.activeWindowMs)
    )
      return 0;
    const activity = this.#produce();
    if (activity === undefined) return this.#settings.maxWaitMs;
    if (activity.busy || now - activity.lastActiveAt < this.#settings.activeWindowMs) return 0;
    return Math.min(this.#settings.maxWaitMs, this.#settings.producingWaitMs);
  }

  /** The next result for one partition; null when `signal` aborted first. */
  next(
    topic: string,
    topicId: string,
    partition: number,
    offset: bigint,
    maxBytes: number,
    signal: AbortSignal | undefined,
  ): Promise<FetchResult | null> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted === true) {
        resolve(null);
        return;
      }
      const demand: Demand = {
        topic,
        topicId,
        partition,
        offset,
        maxBytes,
        signal,
        resolve,
        reject,
        onAbort: undefined,
      };
      if (signal !== undefined) {
        demand.onAbort = () => {
          this.#queue = this.#queue.filter((d) => d !== demand);
          resolve(null);
        };
        signal.addEventListener('abort', demand.onAbort, { once: true });
      }
      this.#queue.push(demand);
      if (!this.#running) {
        this.#running = true;
        // Let the partitions asking in this same turn join the request.
        setImmediate(() => void this.#loop());
      }
    });
  }

  async #loop(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        let waitMs = this.waitMs();
        if (waitMs === 0) {
          const pause = this.#lastSentAt + this.#settings.busyIntervalMs - Date.now();
          if (pause > 0) {
            await sleep(pause);
            // Produce may have gone quiet (or partitions left) meanwhile.
            if (this.#queue.length === 0) break;
            waitMs = this.waitMs();
          }
        }
        await this.#round(waitMs);
      }
    } finally {
      this.#running = false;
    }
  }

  async #round(waitMs: number): Promise<void> {
    const round = this.#takeRound();
    let connection: BrokerConnection;
    let response: FetchResponse;
    let version = 0;
    try {
      connection = await this.#connect();
      this.#connection = connection;
      const withIds = round.every((d) => d.topicId !== ZERO_UUID);
      version = connection.version(Api.Fetch);
      if (!withIds) version = Math.min(version, 12);
      const byTopic = new Map<
        string,
        { topic: string; partitions: { partition: number; fetchOffset: bigint; maxBytes: number }[] }
      >();
      for (const d of round) {
        const key = version >= 13 ? d.topicId : d.topic;
        let entry = byTopic.get(key);
        if (entry === undefined) {
          entry = { topic: key, partitions: [] };
          byTopic.set(key, entry);
        }
        entry.partitions.push({ partition: d.partition, fetchOffset: d.offset, maxBytes: d.maxBytes });
      }
      const topics: FetchTopicRequest[] = [...byTopic.values()];
      const maxBytes = Math.min(
        this.#settings.maxBytes,
        round.reduce((sum, d) => sum + d.maxBytes, 0),
      );
      this.#lastSentAt = Date.now();
      response = await connection.request(
        Api.Fetch,
        {
          maxWaitMs: waitMs,
          minBytes: this.#settings.minBytes,
          maxBytes,
          isolationLevel: this.#isolation,
          topics,
        },
        { extraTimeoutMs: waitMs, maxVersion: version },
      );
    } catch (error) {
      const failure = error instanceof Error ? error : new Error(String(error));
      for (const d of round) this.#settle(d, failure);
      return;
    }
    if (response.errorCode !== 0) {
      const failure = new KafkaProtocolError(response.errorCode, `Fetch from ${connection.address}`);
      for (const d of round) this.#settle(d, failure);
      return;
    }
    const byKey = new Map<string, FetchPartitionResponse>();
    for (const p of response.partitions) byKey.set(`${p.topic}:${p.partition}`, p);
    for (const d of round) {
      const p = byKey.get(`${version >= 13 ? d.topicId : d.topic}:${d.partition}`);
      if (p === undefined) {
        this.#settle(
          d,
          new ConnectionError(
            `broker ${connection.address} left ${d.topic}-${d.partition} out of its Fetch response`,
          ),
        );
        continue;
      }
      if (p.errorCode !== 0) {
        this.#settle(
          d,
          new KafkaProtocolError(
            p.errorCode,
            `Fetch ${d.topic}-${d.partition} at ${d.offset} from ${connection.address}`,
          ),
        );
        continue;
      }
      let result: FetchResult;
      try {
        result = this.#result(d, p);
      } catch (error) {
        // Bytes that do not decode mean the stream from this broker cannot be trusted.
        const failure =
          error instanceof KafkaClientError
            ? error
            : new MalformedResponseError(String(error), { cause: error });
        if (failure instanceof MalformedResponseError) connection.fail(failure);
        this.#settle(d, failure);
        continue;
      }
      this.#settle(d, undefined, result);
    }
  }

  #takeRound(): Demand[] {
    const round: Demand[] = [];
    const later: Demand[] = [];
    const seen = new Set<string>();
    for (const d of this.#queue) {
      const key = `${d.topic}:${d.partition}`;
      // A partition appears once per request; a second reader of it waits for the next round.
      if (seen.has(key)) later.push(d);
      else {
        seen.add(key);
        if (this.#starved.has(key)) round.unshift(d);
        else round.push(d);
      }
    }
    this.#queue = later;
    return round;
  }

  #result(d: Demand, p: FetchPartitionResponse): FetchResult {
    const records = p.records;
    let batches: RecordBatch[] = [];
    let nextOffset = d.offset;
    const key = `${d.topic}:${d.partition}`;
    if (records !== null && records.length > 0) {
      batches = decodeBatches(records, d.offset);
      const last = batches[batches.length - 1];
      if (last === undefined) this.#starved.add(key);
      else {
        this.#starved.delete(key);
        nextOffset = last.lastOffset + 1n;
      }
      if (this.#isolation === 1) batches = dropAborted(batches, p.abortedTransactions);
    }
    return {
      topic: d.topic,
      partition: d.partition,
      highWatermark: p.highWatermark,
      lastStableOffset: p.lastStableOffset,
      logStartOffset: p.logStartOffset,
      batches,
      nextOffset,
    };
  }

  #settle(d: Demand, error: Error | undefined, result?: FetchResult): void {
    if (d.onAbort !== undefined) d.signal?.removeEventListener('abort', d.onAbort);
    if (d.signal?.aborted === true) d.resolve(null);
    else if (error !== undefined) d.reject(error);
    else d.resolve(result ?? null);
  }
}
