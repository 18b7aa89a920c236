import type { Logger } from 'pino';
import type { CacheStore, PartitionStore } from '../cache/index.ts';
import { backoffDelay } from '../client/index.ts';
import type { KafkaApi, TopicMetadata } from '../client/index.ts';
import type { CachedTopic, CachedTopicConfig, DefaultOffset, TopicChange } from './api.ts';
import type { CommitCoalescer } from './commits.ts';
import { PartitionFeeder } from './feeder.ts';
import type { IngestGate } from './ingest.ts';
import type { RecordTransform } from './transforms.ts';
import type { ProducedEnds } from './produced-ends.ts';
import type { CacheServerTuning } from './tuning.ts';
import { handleListeners } from './handle-listeners.ts';
import { TopicDeletedError, TopicNotFoundError } from './errors.ts';

const UNKNOWN_TOPIC_OR_PARTITION = 3;
const UNKNOWN_TOPIC_ID = 100;

/** A topic as a metadata answer has it: the incarnation (topic id) and its partition count. */
export interface TopicShape {
  readonly topicId: string;
  readonly partitions: number;
}

/** How a topic changed under the cache. */
export type TopicLifecycleChange = 'deleted' | 'recreated' | 'partitions_added';

interface Check {
  /** Satisfied by an answer to a metadata request sent at or after this (epoch ms). */
  readonly since: number;
  settle(result: 'fresh' | 'stale'): void;
}

export interface TopicHost {
  readonly store: CacheStore;
  readonly commits: CommitCoalescer;
  readonly ingest: IngestGate;
  /** Ends of what was produced through the binding, for reads that must see their writes. */
  readonly produced: ProducedEnds;
  readonly log: Logger;
  readonly tuning: CacheServerTuning;
  /** The topic's `transforms`, applied to records before they are stored; absent: none. */
  readonly transform?: RecordTransform | undefined;
  client(topic: string): KafkaApi;
  /** The topic's config, asked for again once older than configRefreshMs. */
  config(topic: string, signal: AbortSignal): Promise<CachedTopicConfig>;
  /** Called when the topic should no longer be followed (linger over, or missing and unwanted). */
  idle(follower: TopicFollower): void;
  /** The topic was attached or released: it counts as recently used for eviction. */
  used(topic: string): void;
  /** What a metadata answer said of the topic: its shape, or undefined when it does not exist. */
  shaped(topic: string, shape: TopicShape | undefined): void;
  /** The topic changed under the cache. */
  changed(topic: string, change: TopicLifecycleChange): void;
}

interface Waiter {
  resolve(): void;
  reject(error: Error): void;
}

/**
 * One followed topic: a metadata loop (partitions, topic id, config) and a feeder per partition.
 * Followed while bootstrapped or attached, and for a linger after the last release.
 *
 * The loop asks every metadataRefreshMs, at once when a feeder's fetch names the topic as gone,
 * and before a request is served when its last answer is older than what the request allows
 * (`fresh`). A topic found deleted, or under a new topic id (deleted and created again), ends
 * every attachment with a TopicDeletedError and drops its cached partitions, before anything of
 * a new incarnation is fetched: no reader ever sees records of two incarnations together.
 */
export class TopicFollower {
  readonly name: string;
  readonly bootstrap: boolean;
  readonly defaultOffset: DefaultOffset;
  readonly #host: TopicHost;
  readonly #feeders = new Map<number, PartitionFeeder>();
  // Every lookup and stream open asks for the partitions in order: sorted once per change.
  #sortedPartitions: readonly number[] | undefined;
  readonly #listeners = new Set<(change: TopicChange) => void>();
  readonly #stopping = new AbortController();
  #waiters: Waiter[] = [];
  #known = false;
  #missing = false;
  /** Partitions of the topic the store may hold from before (a restart, an incarnation gone) are to be looked for. */
  #sweep = true;
  #topicId = '';
  /** When the metadata request that was answered last was sent (epoch ms). */
  #checkedAt = 0;
  /** When the metadata request under way was sent, if one is. */
  #asking: number | undefined;
  /** The last metadata request failed: the loop backs off, and requests do not hurry it. */
  #failing = false;
  readonly #checks = new Set<Check>();
  #config: CachedTopicConfig | undefined;
  #attachments = 0;
  #linger: NodeJS.Timeout | undefined;
  #done: Promise<void> = Promise.resolve();
  /** Feeders of a deleted incarnation, still winding down. */
  #retiring: Promise<unknown> = Promise.resolve();
  #wake: (() => void) | undefined;

  constructor(host: TopicHost, name: string, bootstrap: boolean, defaultOffset: DefaultOffset) {
    this.#host = host;
    this.name = name;
    this.bootstrap = bootstrap;
    this.defaultOffset = defaultOffset;
  }

  get attachments(): number {
    return this.#attachments;
  }

  get stopped(): boolean {
    return this.#stopping.signal.aborted;
  }

  start(): void {
    this.#done = this.#run();
  }

  async stop(): Promise<void> {
    clearTimeout(this.#linger);
    this.#stopping.abort();
    this.#wake?.();
    for (const w of this.#waiters) w.reject(new Error(`cache for topic "${this.name}" stopped`));
    this.#waiters = [];
    for (const check of [...this.#checks]) check.settle('stale');
    await this.#done;
    await Promise.all([...this.#feeders.values()].map((f) => f.stop()));
    this.#feeders.clear();
    this.#sortedPartitions = undefined;
    await this.#retiring;
  }

  emit(change: TopicChange): void {
    for (const listener of this.#listeners) {
      try {
        listener(change);
      } catch (error) {
        this.#host.log.error({ topic: this.name, err: error }, 'topic change listener threw');
      }
    }
  }

  /** Resolves once metadata and config are known; rejects when the topic does not exist. */
  whenKnown(): Promise<void> {
    if (this.#known) return Promise.resolve();
    if (this.stopped) return Promise.reject(new Error(`cache for topic "${this.name}" stopped`));
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      // A waiter arriving after the topic was found missing asks again now rather than after a
      // refresh interval: it may have been created since.
      if (this.#missing) this.#wake?.();
    });
  }

  /** True while the last metadata answer said the topic does not exist. */
  get missing(): boolean {
    return this.#missing;
  }

  /** The topic as the cache follows it now; undefined while not known (not yet, missing, rebuilding). */
  shape(): TopicShape | undefined {
    return this.#known ? { topicId: this.#topicId, partitions: this.#feeders.size } : undefined;
  }

  /**
   * Resolves once the metadata answered was asked for at most `maxAgeMs` ago, so that a request
   * served after it sees a deletion or a new incarnation that happened before it arrived; 'stale'
   * when no answer came within `waitMs`. A request still unanswered after `waitMs` means the
   * broker is not answering: then it resolves 'stale' at once, and requests are served from the
   * cache without each adding that wait.
   */
  fresh(maxAgeMs: number, waitMs: number): Promise<'fresh' | 'stale'> {
    const now = Date.now();
    const since = now - maxAgeMs;
    if (this.#checkedAt >= since) return Promise.resolve('fresh');
    if (this.stopped || this.#failing) return Promise.resolve('stale');
    if (this.#asking !== undefined && now - this.#asking >= waitMs) return Promise.resolve('stale');
    return new Promise((resolve) => {
      const check: Check = {
        since,
        settle: (result) => {
          clearTimeout(timer);
          this.#checks.delete(check);
          resolve(result);
        },
      };
      const timer = setTimeout(() => check.settle('stale'), waitMs);
      this.#checks.add(check);
      this.#wake?.();
    });
  }

  /**
   * A fetch named the topic or a partition as gone: asks for the metadata now rather than at the
   * next refresh, unless an answer is as recent as a retry would be anyway.
   */
  suspect(): void {
    if (Date.now() - this.#checkedAt < this.#host.tuning.retryInitialMs) return;
    this.#wake?.();
  }

  /** Counts an attachment before its metadata is known, so no linger ends the topic meanwhile. */
  retain(): void {
    this.#attachments++;
    this.#host.used(this.name);
    clearTimeout(this.#linger);
    this.#linger = undefined;
  }

  releaseOne(): void {
    if (this.#attachments === 0) return;
    this.#attachments--;
    this.#host.used(this.name);
    if (this.#attachments > 0 || this.bootstrap || this.stopped) return;
    clearTimeout(this.#linger);
    if (this.#missing) {
      this.#host.idle(this);
      return;
    }
    this.#linger = setTimeout(() => this.#host.idle(this), this.#host.tuning.lingerMs);
    this.#linger.unref();
  }

  #partitionsInOrder(): readonly number[] {
    return (this.#sortedPartitions ??= [...this.#feeders.keys()].sort((a, b) => a - b));
  }

  handle(): CachedTopic {
    const current = (): CachedTopicConfig | undefined => this.#config;
    const store = this.#host.store;
    const config = this.#config;
    if (config === undefined) throw new Error(`topic "${this.name}" has no config yet`);
    return {
      topic: this.name,
      get config(): CachedTopicConfig {
        return current() ?? config;
      },
      get compacted(): boolean {
        return (current() ?? config).cleanupPolicy.includes('compact');
      },
      defaultOffset: this.defaultOffset,
      partitions: () => this.#partitionsInOrder(),
      isReady: (partition) => this.#feeders.get(partition)?.ready === true,
      producedEnd: (partition) => this.#host.produced.get(this.name, partition),
      endOffsets: async (partitions, isolation, signal) => {
        const client = this.#host.client(this.name);
        const options = signal === undefined ? {} : { signal };
        const ends = await Promise.all(
          partitions.map((p) => client.listOffsets(this.name, p, 'latest', isolation, options)),
        );
        return new Map(partitions.map((p, i) => [p, ends[i] ?? 0n]));
      },
      store: (partition): PartitionStore =>
        this.#feeders.get(partition)?.store ?? store.partition(this.name, partition),
      ...handleListeners(this.#listeners, () => this.releaseOne()),
    };
  }

  async #run(): Promise<void> {
    const signal = this.#stopping.signal;
    const { tuning, log } = this.#host;
    let failures = 0;
    let warnedMissing = false;
    while (!signal.aborted) {
      let delay = tuning.metadataRefreshMs;
      const askedAt = Date.now();
      try {
        this.#asking = askedAt;
        let metadata;
        try {
          metadata = await this.#host.client(this.name).metadata([this.name], { signal });
        } finally {
          this.#asking = undefined;
        }
        const topic = metadata.topics.find((t) => t.name === this.name);
        const code = topic?.error?.brokerCode;
        if (topic === undefined || code === UNKNOWN_TOPIC_OR_PARTITION || code === UNKNOWN_TOPIC_ID) {
          if (this.bootstrap && !warnedMissing)
            log.warn({ topic: this.name }, 'bootstrap topic does not exist yet; waiting for it');
          warnedMissing = true;
          this.#host.shaped(this.name, undefined);
          this.#gone();
          this.#answered(askedAt);
          this.#failing = false;
          delay = backoffDelay(failures++, { initialMs: tuning.retryInitialMs, maxMs: tuning.retryMaxMs });
        } else if (topic.error !== null) {
          throw topic.error;
        } else {
          if (warnedMissing && this.bootstrap) log.info({ topic: this.name }, 'bootstrap topic appeared');
          warnedMissing = false;
          // Produce calls aimed at an incarnation that is gone hear of it before anything waits.
          this.#host.shaped(this.name, { topicId: topic.topicId, partitions: topic.partitions.length });
          if (this.#known && topic.topicId !== this.#topicId) this.#recreated(topic);
          this.#config = await this.#host.config(this.name, signal);
          // The feeders of a deleted incarnation finish before new ones take over their stores.
          await this.#retiring;
          if (signal.aborted) break;
          this.#absorb(topic);
          this.#answered(askedAt);
          failures = 0;
          this.#failing = false;
        }
      } catch (error) {
        if (signal.aborted) break;
        delay = backoffDelay(failures++, { initialMs: tuning.retryInitialMs, maxMs: tuning.retryMaxMs });
        log.warn({ topic: this.name, err: error, retryInMs: Math.round(delay) }, 'topic metadata failed');
        // The broker answered, with an error: requests go on with what the cache knows.
        this.#failing = true;
        for (const check of [...this.#checks]) check.settle('stale');
        if (error instanceof Error && !('retriable' in error && error.retriable === true)) {
          for (const w of this.#waiters)
            w.reject(new Error(`topic "${this.name}": ${error.message}`, { cause: error }));
          this.#waiters = [];
        }
      }
      if (this.#missing && !this.bootstrap && this.#attachments === 0) {
        this.#host.idle(this);
        break;
      }
      if (signal.aborted) break;
      // A request is waiting for an answer newer than the one just given: ask again at once.
      if (this.#checks.size > 0) delay = 0;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  /** A metadata request sent at `askedAt` was answered and what it said is in effect. */
  #answered(askedAt: number): void {
    this.#checkedAt = askedAt;
    for (const check of [...this.#checks]) if (check.since <= askedAt) check.settle('fresh');
  }

  /** The topic is missing: deleted, or never created. */
  #gone(): void {
    const error = new TopicNotFoundError(this.name);
    for (const w of this.#waiters) w.reject(error);
    this.#waiters = [];
    this.#missing = true;
    if (this.#known) {
      this.#host.log.warn(
        { topic: this.name },
        'topic was deleted; stopping its feed and dropping its cache',
      );
      this.#retire(new TopicDeletedError(this.name), 'deleted');
    } else if (this.#sweep) {
      // Deleted while nobody followed it (kgate was down, say): what the store kept of it goes.
      this.#sweep = false;
      this.#dropStored(new Set());
    }
  }

  /** The topic is there under another id: it was deleted and created again since the last answer. */
  #recreated(topic: TopicMetadata): void {
    this.#host.log.info(
      {
        topic: this.name,
        from: this.#topicId,
        to: topic.topicId,
        partitionsBefore: this.#feeders.size,
        partitions: topic.partitions.length,
      },
      'topic was deleted and created again; dropping the cache of the old one',
    );
    this.#retire(new TopicDeletedError(this.name, true), 'recreated');
  }

  /**
   * Ends the incarnation followed until now: every attachment is told (an `error` change, terminal
   * for it), then its feeders stop and its partitions are dropped from the store. Until a metadata
   * answer is absorbed again the topic is not known, so no attach is served in between.
   */
  #retire(error: TopicDeletedError, change: TopicLifecycleChange): void {
    this.#known = false;
    this.#sweep = false;
    const feeders = [...this.#feeders.values()];
    this.#feeders.clear();
    this.#sortedPartitions = undefined;
    this.#host.changed(this.name, change);
    this.#host.produced.forgetTopic(this.name);
    this.emit({ type: 'error', error });
    this.#retiring = Promise.all([this.#retiring, ...feeders.map((f) => f.stop())]).then(() =>
      this.#dropStored(new Set()),
    );
  }

  /**
   * Drops the store's partitions of this topic other than `keep`: they belong to an incarnation
   * that is gone, or were left by a partition count the topic no longer has. Each leaves the
   * catalog at once; the records are reclaimed in the background.
   */
  #dropStored(keep: ReadonlySet<number>): void {
    const store = this.#host.store;
    let stored: Array<{ topic: string; partition: number }>;
    try {
      stored = store.partitions();
    } catch {
      return; // closed under us by stop()
    }
    const dropped: number[] = [];
    const reclaiming: Promise<void>[] = [];
    for (const { topic, partition } of stored) {
      if (topic !== this.name || keep.has(partition)) continue;
      this.#host.produced.forget(this.name, partition);
      try {
        reclaiming.push(store.partition(this.name, partition).drop());
        dropped.push(partition);
      } catch (error) {
        this.#host.log.warn({ topic: this.name, partition, err: error }, 'could not drop a cached partition');
      }
    }
    if (dropped.length === 0) return;
    this.#host.log.info(
      { topic: this.name, partitions: dropped },
      'dropped cached partitions the topic no longer has',
    );
    void Promise.all(reclaiming).catch((error: unknown) => {
      this.#host.log.warn({ topic: this.name, err: error }, 'cache reclaim failed');
    });
  }

  #absorb(topic: TopicMetadata): void {
    this.#missing = false;
    this.#topicId = topic.topicId;
    if (this.#sweep) {
      this.#sweep = false;
      this.#dropStored(new Set(topic.partitions.map((p) => p.partition)));
    }
    const added: number[] = [];
    for (const p of topic.partitions) {
      if (this.#feeders.has(p.partition)) continue;
      const feeder = new PartitionFeeder(
        {
          client: this.#host.client(this.name),
          log: this.#host.log,
          tuning: this.#host.tuning,
          commits: this.#host.commits,
          ingest: this.#host.ingest,
          ...(this.#host.transform === undefined ? {} : { transform: this.#host.transform }),
          emit: (change) => this.emit(change),
          reset: () => this.#host.produced.forget(this.name, p.partition),
          currentTopicId: () => this.#currentTopicId(),
          suspect: () => this.suspect(),
        },
        this.#host.store.partition(this.name, p.partition),
        topic.topicId,
      );
      this.#feeders.set(p.partition, feeder);
      this.#sortedPartitions = undefined;
      feeder.start();
      added.push(p.partition);
    }
    if (added.length > 0 && this.#known) {
      this.#host.log.info({ topic: this.name, added }, 'topic has new partitions; following them');
      this.#host.changed(this.name, 'partitions_added');
      this.emit({ type: 'partitions', partitions: this.#partitionsInOrder() });
    }
    this.#known = true;
    for (const w of this.#waiters) w.resolve();
    this.#waiters = [];
  }

  async #currentTopicId(): Promise<string | undefined> {
    try {
      const metadata = await this.#host
        .client(this.name)
        .metadata([this.name], { signal: this.#stopping.signal });
      const topic = metadata.topics.find((t) => t.name === this.name);
      return topic === undefined || topic.error !== null ? undefined : topic.topicId;
    } catch {
      return undefined;
    }
  }
}
