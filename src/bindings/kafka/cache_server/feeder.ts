import type { Logger } from 'pino';
import type { PartitionStore } from '../cache/index.ts';
import {
  backoffDelay,
  type FetchResult,
  type KafkaApi,
  OffsetOutOfRangeError,
  sleep,
  TopicGoneError,
} from '../client/index.ts';
import type { TopicChange } from './api.ts';
import type { CommitCoalescer } from './commits.ts';
import { IngestPausedError } from './errors.ts';
import type { IngestGate } from './ingest.ts';
import type { RecordTransform } from './transforms.ts';
import { recordsOf, TransactionHold } from './transactions.ts';
import type { CacheServerTuning } from './tuning.ts';

export interface FeederHost {
  readonly client: KafkaApi;
  readonly log: Logger;
  readonly tuning: CacheServerTuning;
  /** Appends go through it so that partitions fetched together share a commit. */
  readonly commits: CommitCoalescer;
  /** Paused while the disk is full: nothing is fetched then. */
  readonly ingest: IngestGate;
  /** The topic's `transforms`: the key and headers they extract are stored with each record. */
  readonly transform?: RecordTransform;
  emit(change: TopicChange): void;
  /** The store was emptied for a new incarnation of the partition's log. */
  reset(): void;
  /** The topic's id as the cluster has it now (asked fresh), or undefined when unknown. */
  currentTopicId(): Promise<string | undefined>;
  /** A fetch said the topic or the partition is gone: the topic's metadata should be asked now. */
  suspect(): void;
}

/**
 * Keeps one partition's store fed from Kafka: one fetch loop from the store's next offset, which
 * is what makes a restart resume without refetching. Each partition has its own loop, so one
 * without a leader holds up no other.
 */
export class PartitionFeeder {
  readonly topic: string;
  readonly partition: number;
  readonly store: PartitionStore;
  readonly #host: FeederHost;
  #topicId: string;
  #ready = false;
  readonly #stopping = new AbortController();
  #done: Promise<void> = Promise.resolve();
  /** After holding back too much for open transactions: fetch read_committed until caught up. */
  #committedOnly = false;

  constructor(host: FeederHost, store: PartitionStore, topicId: string) {
    this.#host = host;
    this.store = store;
    this.topic = store.topic;
    this.partition = store.partition;
    this.#topicId = topicId;
  }

  get ready(): boolean {
    return this.#ready;
  }

  start(): void {
    this.#done = this.#run();
  }

  async stop(): Promise<void> {
    this.#stopping.abort();
    await this.#done;
  }

  async #run(): Promise<void> {
    const stopping = this.#stopping.signal;
    const { tuning, log, ingest } = this.#host;
    let failures = 0;
    while (!stopping.aborted) {
      if (ingest.paused) {
        // Whatever this loop fetched but did not commit is gone with the last attempt; it is
        // fetched again from the store's next offset once there is room for it.
        await ingest.whenResumed(stopping);
        continue;
      }
      const signal = AbortSignal.any([stopping, ingest.signal]);
      try {
        await this.#bind();
        await this.#follow(signal);
        failures = 0;
      } catch (error) {
        if (stopping.aborted) break;
        // The disk filled (this partition's commit or another's): no retry, no warning per
        // partition; the gate logged it once and the loop waits at its top.
        if (ingest.paused || error instanceof IngestPausedError) continue;
        let failure = error;
        if (error instanceof OffsetOutOfRangeError) {
          try {
            if (await this.#outOfRange(error)) {
              failures = 0;
              continue;
            }
          } catch (inner) {
            failure = inner;
          }
        }
        const delay = backoffDelay(failures++, {
          initialMs: tuning.retryInitialMs,
          maxMs: tuning.retryMaxMs,
        });
        if (failure instanceof TopicGoneError) {
          // The topic's metadata decides: deleted or recreated, the follower stops this feeder and
          // logs it once; otherwise (a broker that has not heard of a new topic yet) it passes.
          this.#host.suspect();
          log.debug(
            { topic: this.topic, partition: this.partition, err: failure, retryInMs: Math.round(delay) },
            'fetch found the topic gone; asking its metadata',
          );
          await sleep(delay, stopping);
          continue;
        }
        log.warn(
          {
            topic: this.topic,
            partition: this.partition,
            err: failure,
            retryInMs: Math.round(delay),
          },
          'cache feed failed; retrying',
        );
        await sleep(delay, stopping);
      }
    }
  }

  /** A store holding another incarnation of the topic is emptied before anything is appended. */
  async #bind(): Promise<void> {
    if (this.#topicId === '' || this.store.bindTopicId(this.#topicId)) return;
    this.#host.log.info(
      { topic: this.topic, partition: this.partition, topicId: this.#topicId, cached: this.store.topicId },
      'topic was recreated; resetting its cache',
    );
    await this.store.reset(this.#topicId);
    this.#host.reset();
    this.#host.emit({
      type: 'truncated',
      partition: this.partition,
      logStartOffset: this.store.logStartOffset,
    });
  }

  async #follow(signal: AbortSignal): Promise<void> {
    const store = this.store;
    const committedOnly = this.#committedOnly;
    const hold = new TransactionHold();
    const results = this.#host.client.fetch(this.topic, this.partition, store.nextOffset, {
      isolation: committedOnly ? 'read_committed' : 'read_uncommitted',
      signal,
      // Only the incarnation the store holds: records of a topic created again under the name
      // must never continue it.
      ...(this.#topicId === '' ? {} : { topicId: this.#topicId }),
    });
    for await (const result of results) {
      if (result.logStartOffset > store.logStartOffset) await this.#brokerLogStart(result.logStartOffset);
      else store.sourceLogStart(result.logStartOffset);
      let records;
      if (committedOnly) records = recordsOf(result.batches);
      else {
        for (const batch of result.batches) hold.add(batch);
        records = hold.release();
      }
      if (this.#host.transform !== undefined) records = await this.#host.transform.apply(records);
      const before = store.nextOffset;
      const lsoBefore = store.lastStableOffset;
      // Awaited before the next fetch result is pulled: that is the backpressure, and nothing is
      // announced below before it is committed.
      await this.#host.commits.append(store, records, {
        // Past a gap at the end (compacted upstream, or aborted batches dropped) only when nothing
        // is held back: held records must be refetched after a restart.
        ...(hold.empty ? { nextOffset: result.nextOffset } : {}),
        highWatermark: result.highWatermark,
        lastStableOffset: result.lastStableOffset,
      });
      if (!this.#ready) {
        this.#ready = true;
        this.#host.emit({ type: 'ready', partition: this.partition });
      }
      if (store.nextOffset !== before || store.lastStableOffset !== lsoBefore)
        this.#host.emit({ type: 'appended', partition: this.partition, nextOffset: store.nextOffset });
      if (!committedOnly && hold.bytes > this.#host.tuning.maxHeldBytes) {
        this.#host.log.warn(
          { topic: this.topic, partition: this.partition, heldBytes: hold.bytes, from: hold.firstHeldOffset },
          'open transactions hold back too much; refetching read_committed until they end',
        );
        this.#committedOnly = true;
        return;
      }
      if (committedOnly && caughtUp(result, store.nextOffset)) {
        this.#committedOnly = false;
        return;
      }
    }
  }

  /** The broker deleted its head (retention, deleteRecords): the cache follows. */
  async #brokerLogStart(offset: bigint): Promise<void> {
    await this.store.truncateBefore(offset);
    this.#host.emit({
      type: 'truncated',
      partition: this.partition,
      logStartOffset: this.store.logStartOffset,
    });
  }

  /** True when the position was repaired and fetching can go on at once. */
  async #outOfRange(error: OffsetOutOfRangeError): Promise<boolean> {
    const next = this.store.nextOffset;
    if (next < error.earliest) {
      this.#host.log.info(
        { topic: this.topic, partition: this.partition, cached: next, earliest: error.earliest },
        'broker log start passed the cache; skipping ahead',
      );
      await this.#brokerLogStart(error.earliest);
      return true;
    }
    if (next > error.latest) {
      // The log ends before the cache does: recreated under the same name (and the new id not
      // seen yet), or truncated by an unclean leader election. Either way the cache is wrong;
      // only the second is this partition's own business.
      const id = (await this.#host.currentTopicId()) ?? this.#topicId;
      // Another incarnation: the follower drops the whole topic at once, so that no partition of
      // it is read from the new one while another still holds the old.
      if (id !== this.#topicId)
        throw new TopicGoneError(this.topic, this.partition, `topic id is ${id}, not ${this.#topicId}`);
      this.#host.log.warn(
        { topic: this.topic, partition: this.partition, cached: next, latest: error.latest },
        'cache is ahead of the broker log; resetting and refetching',
      );
      await this.store.reset(id);
      this.#host.reset();
      this.#host.emit({
        type: 'truncated',
        partition: this.partition,
        logStartOffset: this.store.logStartOffset,
      });
      return true;
    }
    return false;
  }
}

function caughtUp(result: FetchResult, nextOffset: bigint): boolean {
  return result.lastStableOffset >= result.highWatermark && nextOffset >= result.highWatermark;
}
