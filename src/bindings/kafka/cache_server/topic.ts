import type { Logger } from 'pino';
import type { CacheStore, PartitionStore } from '../cache/index.ts';
import { backoffDelay } from '../client/index.ts';
import type { KafkaApi, TopicMetadata } from '../client/index.ts';
import type { CachedTopic, CachedTopicConfig, DefaultOffset, TopicChange } from './api.ts';
import type { CommitCoalescer } from './commits.ts';
import { PartitionFeeder } from './feeder.ts';
import type { IngestGate } from './ingest.ts';
import type { ProducedEnds } from './produced-ends.ts';
import type { CacheServerTuning } from './tuning.ts';
import { handleListeners } from './handle-listeners.ts';
import { TopicNotFoundError } from './errors.ts';

const UNKNOWN_TOPIC_OR_PARTITION = 3;
const UNKNOWN_TOPIC_ID = 100;

export interface TopicHost {
  readonly store: CacheStore;
  readonly commits: CommitCoalescer;
  readonly ingest: IngestGate;
  /** Ends of what was produced through the binding, for reads that must see their writes. */
  readonly produced: ProducedEnds;
  readonly log: Logger;
  readonly tuning: CacheServerTuning;
  client(topic: string): KafkaApi;
  /** The topic's config, asked for again once older than configRefreshMs. */
  config(topic: string, signal: AbortSignal): Promise<CachedTopicConfig>;
  /** Called when the topic should no longer be followed (linger over, or missing and unwanted). */
  idle(follower: TopicFollower): void;
  /** The topic was attached or released: it counts as recently used for eviction. */
  used(topic: string): void;
}

interface Waiter {
  resolve(): void;
  reject(error: Error): void;
}

/**
 * One followed topic: a metadata loop (partitions, topic id, config) and a feeder per partition.
 * Followed while bootstrapped or attached, and for a linger after the last release.
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
  #topicId = '';
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
      try {
        const metadata = await this.#host.client(this.name).metadata([this.name], { signal });
        const topic = metadata.topics.find((t) => t.name === this.name);
        const code = topic?.error?.brokerCode;
        if (topic === undefined || code === UNKNOWN_TOPIC_OR_PARTITION || code === UNKNOWN_TOPIC_ID) {
          if (this.bootstrap && !warnedMissing)
            log.warn({ topic: this.name }, 'bootstrap topic does not exist yet; waiting for it');
          warnedMissing = true;
          this.#gone(new TopicNotFoundError(this.name));
          delay = backoffDelay(failures++, { initialMs: tuning.retryInitialMs, maxMs: tuning.retryMaxMs });
        } else if (topic.error !== null) {
          throw topic.error;
        } else {
          if (warnedMissing && this.bootstrap) log.info({ topic: this.name }, 'bootstrap topic appeared');
          warnedMissing = false;
          this.#config = await this.#host.config(this.name, signal);
          // The feeders of a deleted incarnation finish before new ones take over their stores.
          await this.#retiring;
          if (signal.aborted) break;
          this.#absorb(topic);
          failures = 0;
        }
      } catch (error) {
        if (signal.aborted) break;
        delay = backoffDelay(failures++, { initialMs: tuning.retryInitialMs, maxMs: tuning.retryMaxMs });
        log.warn({ topic: this.name, err: error, retryInMs: Math.round(delay) }, 'topic metadata failed');
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

  /** The topic is missing: deleted, or never created. */
  #gone(error: TopicNotFoundError): void {
    for (const w of this.#waiters) w.reject(error);
    this.#waiters = [];
    this.#missing = true;
    if (!this.#known) return;
    this.#known = false;
    this.#host.log.warn({ topic: this.name }, 'topic was deleted; stopping its feed');
    const feeders = [...this.#feeders.values()];
    this.#feeders.clear();
    this.#sortedPartitions = undefined;
    this.#retiring = Promise.all([this.#retiring, ...feeders.map((f) => f.stop())]);
    this.emit({ type: 'error', error: new Error(`topic "${this.name}" was deleted`) });
  }

  #absorb(topic: TopicMetadata): void {
    this.#missing = false;
    if (this.#topicId !== '' && this.#topicId !== topic.topicId) {
      this.#host.log.info({ topic: this.name, from: this.#topicId, to: topic.topicId }, 'topic id changed');
      for (const f of this.#feeders.values()) f.retarget(topic.topicId);
    }
    this.#topicId = topic.topicId;
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
          emit: (change) => this.emit(change),
          reset: () => this.#host.produced.forget(this.name, p.partition),
          currentTopicId: () => this.#currentTopicId(),
        },
        this.#host.store.partition(this.name, p.partition),
        topic.topicId,
      );
      this.#feeders.set(p.partition, feeder);
      this.#sortedPartitions = undefined;
      feeder.start();
      added.push(p.partition);
    }
    if (added.length > 0 && this.#known)
      this.emit({ type: 'partitions', partitions: this.#partitionsInOrder() });
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
