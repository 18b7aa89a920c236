import { mkdir } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { BindingConfig, RouteTable } from '../../../config/index.ts';
import { untilAborted } from '../../../engine/abort.ts';
import type { Binding, BindingContext, BindingFactory } from '../../../engine/binding.ts';
import { CacheStore } from '../cache/index.ts';
import {
  KafkaWaitError,
  type KafkaApi,
  type KafkaReachability,
  type ProduceOptions,
  type ProduceRecord,
  type ProduceResult,
} from '../client/index.ts';
import { topicRoutes, type TopicCondition } from '../topic-conditions.ts';
import { defaultOffsets } from '../topic-options.ts';
import type { AttachOptions, CachedTopic, CachedTopicConfig, CacheServerApi, DefaultOffset } from './api.ts';
import { CommitCoalescer } from './commits.ts';
import { IngestGate } from './ingest.ts';
import { CacheMaintenance } from './maintenance.ts';
import { cacheServerOptions } from './options.ts';
import { createCacheServerMetrics, type CacheServerMetrics } from './metrics.ts';
import { RequestedTopics } from './requested-topics.ts';
import { partitionForKey } from './murmur2.ts';
import { freeBytes, storageErrorKind } from './storage-errors.ts';
import { ProducedEnds } from './produced-ends.ts';
import { Refreshed } from './refreshed.ts';
import { TopicNotFoundError } from './errors.ts';
import { PendingProduces } from './pending-produces.ts';
import { TopicFollower, type TopicHost, type TopicLifecycleChange, type TopicShape } from './topic.ts';
import { CONFIG_TIMEOUT_MS, parseTopicConfig } from './topic-config.ts';
import { DEFAULT_TUNING, type CacheServerTuning } from './tuning.ts';
import { KafkaWaits } from './waits.ts';
import { CacheServerTransforms } from './transforms.ts';
import { WarmupReports } from './warmup.ts';
import type { CachePartitionStatus } from '../../../telemetry/status.ts';

export type {
  AttachOptions,
  CachedTopic,
  CachedTopicConfig,
  CacheServerApi,
  DefaultOffset,
  TopicChange,
} from './api.ts';
export { murmur2, partitionForKey } from './murmur2.ts';
export { IngestPausedError, TopicDeletedError, TopicNotFoundError } from './errors.ts';
export { parseTopicConfig } from './topic-config.ts';
export { DEFAULT_TUNING, type CacheServerTuning } from './tuning.ts';

const DEFAULT_OFFSET: DefaultOffset = 'historical';

/** Beyond twice a failed commit, the free space under which a short write (EIO) means a full disk. */
const EIO_HEADROOM_BYTES = 1024 * 1024;

function isKafkaApi(binding: Binding): binding is Binding & KafkaApi {
  const candidate = binding as Partial<KafkaApi>;
  return (
    typeof candidate.fetch === 'function' &&
    typeof candidate.metadata === 'function' &&
    typeof candidate.describeTopicConfigs === 'function' &&
    typeof candidate.produce === 'function'
  );
}

/**
 * The `kafka cache_server` binding: keeps an LMDB cache of the topics it follows under its state
 * directory and hands cache_clients read access to it. Bootstrap topics are followed from start;
 * others from their first attach() until a linger after the last release. Expiry and compaction
 * run on their own timer over every cached partition, attached or not.
 */
export class CacheServerBinding implements Binding, CacheServerApi {
  readonly name: string;
  readonly config: BindingConfig;
  readonly #context: BindingContext;
  readonly #log: Logger;
  readonly #tuning: CacheServerTuning;
  readonly #routes: RouteTable<string, TopicCondition>;
  readonly #bootstrap: readonly string[];
  readonly #defaultOffset: (topic: string) => DefaultOffset | undefined;
  readonly #transforms: CacheServerTransforms;
  readonly #followers = new Map<string, TopicFollower>();
  readonly #configs: Refreshed<CachedTopicConfig>;
  readonly #roundRobin = new Map<string, number>();
  readonly #produced = new ProducedEnds();
  /**
   * Topics produced to but not followed: their id and partition count (null: missing), asked
   * again when older than metadataMaxAgeMs.
   */
  readonly #shapes: Refreshed<TopicShape | null>;
  /** Produce calls not answered yet, which a deleted or recreated topic must reach. */
  readonly #pending = new PendingProduces();
  /** Per topic with produce calls waiting, the timer that keeps its metadata fresh meanwhile. */
  readonly #watching = new Map<string, NodeJS.Timeout>();
  /** Topics whose requests were last served without fresh metadata, logged once until it answers. */
  readonly #stale = new Set<string>();
  readonly #stopping = new AbortController();
  readonly #waits: KafkaWaits;
  #store: CacheStore | undefined;
  #commits: CommitCoalescer | undefined;
  #ingest: IngestGate | undefined;
  #metrics: CacheServerMetrics | undefined;
  #maintenance: CacheMaintenance | undefined;
  #maintaining: Promise<void> = Promise.resolve();
  #reclaim: Promise<unknown> = Promise.resolve();
  readonly #warmup: WarmupReports;
  readonly #maxBytes: number | undefined;
  /** Last attach or release per topic (epoch ms), for evicting the least recently used first. */
  readonly #lastUsed = new Map<string, number>();
  #requested: RequestedTopics | undefined;

  constructor(context: BindingContext, tuning: Partial<CacheServerTuning> = {}) {
    this.#context = context;
    this.config = context.config;
    this.name = context.config.name;
    this.#log = context.logger;
    const options = cacheServerOptions(context.config.options);
    this.#tuning = { ...DEFAULT_TUNING, ...options.tuning, ...tuning };
    this.#routes = topicRoutes(context.config);
    this.#configs = new Refreshed(this.#tuning.configRefreshMs);
    // Produce requests name topics too (a path may make the name): the shapes kept of topics not
    // followed are bounded as the topics followed for requests are.
    this.#shapes = new Refreshed(this.#tuning.metadataMaxAgeMs, this.#tuning.requestedTopics);
    const { bootstrap, topics } = options;
    this.#bootstrap = bootstrap;
    this.#defaultOffset = defaultOffsets(topics);
    this.#transforms = new CacheServerTransforms(
      topics,
      context.catalogs ?? {},
      this.#log,
      context.configFile,
    );
    const max = context.cacheMaxBytes;
    this.#maxBytes = max !== undefined && Number.isFinite(max) && max > 0 ? max : undefined;
    this.#waits = new KafkaWaits({
      binding: this.name,
      log: this.#log,
      metrics: context.metrics,
      reachability: (topic) => this.#reachability(topic),
    });
    this.#warmup = new WarmupReports({
      log: this.#log,
      topics: this.#bootstrap,
      handle: (topic) => {
        try {
          return this.#followers.get(topic)?.handle();
        } catch {
          return undefined; // metadata not known yet
        }
      },
    });
  }

  /** The store, for diagnostics and tests; undefined before start and after stop. */
  get store(): CacheStore | undefined {
    return this.#store;
  }

  /** Commits of fetched records and the appends they carried, for diagnostics; undefined when stopped. */
  get ingestCommits(): { commits: number; appends: number } | undefined {
    const c = this.#commits;
    return c === undefined ? undefined : { commits: c.commits, appends: c.appends };
  }

  /** Topics followed now. */
  followedTopics(): string[] {
    return [...this.#followers.keys()];
  }

  async start(_signal: AbortSignal): Promise<void> {
    // Every exit is checked now so that miswiring fails at startup, not at the first attach.
    const exits = new Set([this.config.exit, ...this.config.routes.map((r) => r.exit)]);
    for (const exit of exits) {
      if (exit === undefined) continue;
      if (!isKafkaApi(this.#context.lookup(exit)))
        throw new Error(`binding ${this.name}: exit ${exit} is not a kafka client`);
    }
    await mkdir(this.#context.stateDir, { recursive: true });
    const store = CacheStore.open(this.#context.stateDir, { durability: this.#tuning.durability });
    this.#store = store;
    const metrics = createCacheServerMetrics(this.#context.metrics, this.name, store);
    this.#metrics = metrics;
    this.#requested = new RequestedTopics(
      this.name,
      this.#tuning.requestedTopics,
      this.#followers,
      this.#context.metrics,
    );
    this.#ingest = this.#ingestGate(store);
    this.#commits = new CommitCoalescer(
      store,
      this.#tuning.maxCommitBytes,
      this.#ingest,
      this.#tuning.maxCommitRecords,
    );
    // Data of partitions reset before a restart is still on disk until reclaimed.
    this.#reclaim = store.reclaim().catch((error: unknown) => {
      this.#log.warn({ err: error }, 'cache reclaim failed');
    });
    // Following runs in the background and retries for ever: a bootstrap topic missing or a
    // broker down at startup must not fail the binding, and must be picked up once it is there.
    for (const topic of this.#bootstrap) this.#follower(topic, true);
    this.#maintenance = this.#cacheMaintenance(store, metrics);
    this.#maintaining = this.#maintenance.run(this.#stopping.signal);
    this.#warmup.start();
    this.#log.info({ dir: this.#context.stateDir, bootstrap: this.#bootstrap }, 'cache server started');
  }

  async stop(_signal: AbortSignal): Promise<void> {
    this.#stopping.abort();
    this.#warmup.stop();
    for (const timer of this.#watching.values()) clearInterval(timer);
    this.#watching.clear();
    const followers = [...this.#followers.values()];
    this.#followers.clear();
    await Promise.all(followers.map((f) => f.stop()));
    await this.#ingest?.stop();
    await this.#maintaining;
    await this.#reclaim;
    this.#metrics?.close();
    this.#requested?.close();
    // A feeder that stopped mid-append may have left one queued; it is committed, not dropped.
    this.#commits?.flush();
    this.#commits = undefined;
    this.#ingest = undefined;
    await this.#store?.close();
    this.#store = undefined;
    this.#maintenance = undefined;
  }

  /**
   * Pauses ingest when not even one record can be committed for want of space, and resumes it
   * once the store takes a write as large as that commit needed (the commit coalescer sizes
   * commits to what fits from then on). A short write (EIO) counts as no space when the
   * filesystem has less than twice the failed commit, and 1 MiB for LMDB's own pages, left.
   */
  #ingestGate(store: CacheStore): IngestGate {
    const dir = this.#context.stateDir;
    return new IngestGate({
      log: this.#log,
      path: dir,
      backoff: { initialMs: this.#tuning.retryInitialMs, maxMs: this.#tuning.retryMaxMs },
      classify: (error, bytes) => storageErrorKind(error, dir, 2 * bytes + EIO_HEADROOM_BYTES),
      probe: (bytes) => store.probeWrite(bytes),
      free: () => freeBytes(dir),
      changed: (paused, waitingForBytes) => this.#metrics?.ingestPaused(paused, waitingForBytes),
      storageError: (kind) => this.#metrics?.storageError(kind),
    });
  }

  /** Why ingest from Kafka is paused (a full disk), for status reports; undefined while it runs. */
  ingestProblem(): string | undefined {
    return this.#ingest?.problem;
  }

  /** Every cached topic partition with its position against the broker's; reads the store only. */
  status(): CachePartitionStatus[] {
    const store = this.#store;
    if (store === undefined) return [];
    let partitions: Array<{ topic: string; partition: number }>;
    try {
      partitions = store.partitions();
    } catch {
      return []; // closed under us by stop()
    }
    return partitions
      .filter(({ topic, partition }) => this.#live(topic, partition))
      .sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1))
      .map(({ topic, partition }) => {
        const s = store.partition(topic, partition).stats();
        const lag = s.highWatermark > s.nextOffset ? s.highWatermark - s.nextOffset : 0n;
        return {
          topic,
          partition,
          firstOffset: s.firstOffset === null ? null : Number(s.firstOffset),
          lastOffset: s.lastOffset === null ? null : Number(s.lastOffset),
          nextOffset: Number(s.nextOffset),
          highWatermark: Number(s.highWatermark),
          lag: Number(lag),
          bytes: s.bytes,
          messages: s.records,
          bootstrap: this.#bootstrap.includes(topic),
        };
      });
  }

  /**
   * False for a partition of a followed topic that the topic no longer has (deleted, or recreated
   * with fewer partitions) while its cache is being dropped; unfollowed topics are listed as stored.
   */
  #live(topic: string, partition: number): boolean {
    const follower = this.#followers.get(topic);
    if (follower === undefined || follower.stopped) return true;
    if (follower.missing) return false;
    const shape = follower.shape();
    return shape === undefined || partition < shape.partitions;
  }

  async attach(topic: string, options: AttachOptions = {}): Promise<CachedTopic> {
    if (this.#store === undefined || this.#stopping.signal.aborted)
      throw new Error(`binding ${this.name} is not running`);
    this.#waits.checkReached(topic);
    this.#requested?.admit(topic, this.#lastUsed, (name) => this.#unfollow(name));
    const follower = this.#follower(topic, false);
    follower.retain();
    const known = async (): Promise<void> => {
      await follower.whenKnown();
      // A topic deleted (or recreated) since the last metadata answer is seen before this is
      // served, not a refresh interval later: 404 rather than the old cache, never a mix.
      await this.#checked(follower);
      if (follower.missing) throw new TopicNotFoundError(topic);
      await follower.whenKnown();
    };
    try {
      await this.#waits.within(known(), topic, 'metadata', options);
      return follower.handle();
    } catch (error) {
      follower.releaseOne();
      throw error;
    }
  }

  /** follower.fresh() within the binding's bounds; a stale answer is counted and logged once. */
  async #checked(follower: TopicFollower, signal?: AbortSignal): Promise<void> {
    const { metadataMaxAgeMs, metadataWaitMs } = this.#tuning;
    const checking = follower.fresh(metadataMaxAgeMs, metadataWaitMs);
    const result = await (signal === undefined ? checking : untilAborted(checking, signal));
    if (result === 'stale') this.#servedStale(follower.name);
  }

  #servedStale(topic: string): void {
    this.#metrics?.metadataStale();
    if (this.#stale.has(topic)) return;
    this.#stale.add(topic);
    this.#log.warn(
      { topic, waitMs: this.#tuning.metadataWaitMs },
      'topic metadata did not answer in time; serving the topic from what the cache knows',
    );
  }

  async produce(
    topic: string,
    partition: number | undefined,
    records: readonly ProduceRecord[],
    options: ProduceOptions = {},
  ): Promise<ProduceResult & { readonly partition: number }> {
    const client = this.#client(topic);
    this.#waits.checkReached(topic);
    const { signal, maxBlockMs } = options;
    const started = Date.now();
    // What is left of the caller's wait for Kafka, for each step before the records are sent.
    const left = (): { timeoutMs?: number } =>
      maxBlockMs === undefined ? {} : { timeoutMs: maxBlockMs - (Date.now() - started) };
    // A call not sent yet when its topic is recreated picks again, by the new partition count;
    // a topic recreated over and over within one call is given up on rather than chased.
    for (let attempt = 1; ; attempt++) {
      const shape = await this.#waits.within(this.#shape(topic, signal), topic, 'partitions', {
        ...(signal === undefined ? {} : { signal }),
        ...left(),
      });
      let target = partition;
      if (target === undefined) {
        const count = shape.partitions;
        // One call goes to one partition; its first record's key decides, as a batch would.
        const key = records[0]?.key;
        if (key === undefined || key === null) {
          const next = this.#roundRobin.get(topic) ?? 0;
          this.#roundRobin.set(topic, (next + 1) % count);
          target = next % count;
        } else target = partitionForKey(key, count);
      }
      const pending = this.#pending.add(topic, shape.topicId, target);
      this.#watchPending(topic);
      const gone = pending.controller.signal;
      try {
        const remaining = left().timeoutMs;
        const result = await client.produce(topic, target, records, {
          ...options,
          // The client may still wait for a leader or a producer id, within what is left.
          ...(remaining === undefined ? {} : { maxBlockMs: remaining }),
          signal: signal === undefined ? gone : AbortSignal.any([signal, gone]),
        });
        if (maxBlockMs !== undefined) this.#waits.served();
        // An acknowledgement from an incarnation the cache has dropped says nothing of the one
        // it reads now.
        if (this.#topicIdOf(topic) === shape.topicId) this.#produced.note(topic, target, result);
        return { ...result, partition: target };
      } catch (error) {
        if (signal?.aborted === true && error === signal.reason) this.#metrics?.produceDropped('client_gone');
        else if (gone.aborted && error === gone.reason) {
          if (partition === undefined && attempt < 3) {
            this.#metrics?.produceRerouted();
            continue;
          }
          this.#metrics?.produceDropped('topic_deleted');
        } else if (error instanceof KafkaWaitError && maxBlockMs !== undefined) {
          // Told as the whole wait the caller allowed, not the part of it the client had left.
          const { waitingFor, subject } = error;
          throw this.#waits.expired(
            new KafkaWaitError(waitingFor, subject, maxBlockMs, this.unreachable(topic)),
          );
        }
        throw error;
      } finally {
        this.#pending.settle(pending);
      }
    }
  }

  /** The id of the topic as the cache knows it now, if it knows one. */
  #topicIdOf(topic: string): string | undefined {
    return this.#followers.get(topic)?.shape()?.topicId ?? this.#shapes.peek(topic)?.value?.topicId;
  }

  /**
   * While produce calls to `topic` wait, its metadata is asked for every metadataMaxAgeMs, so that
   * a deletion or a recreation reaches calls stuck looking for a leader of a partition that is gone.
   */
  #watchPending(topic: string): void {
    if (this.#watching.has(topic)) return;
    const timer = setInterval(
      () => {
        if (!this.#pending.has(topic) || this.#stopping.signal.aborted) {
          clearInterval(timer);
          this.#watching.delete(topic);
          return;
        }
        // What it finds reaches the pending calls through #pending.reshaped.
        this.#shape(topic).catch(() => undefined);
      },
      Math.max(100, this.#tuning.metadataMaxAgeMs),
    );
    timer.unref();
    this.#watching.set(topic, timer);
  }

  /**
   * The topic's id and partition count as of at most metadataMaxAgeMs ago (or as last known, when
   * the broker does not answer within metadataWaitMs); TopicNotFoundError when it does not exist.
   * A followed topic answers from its follower, others from a Metadata request that callers at
   * the same time share.
   */
  async #shape(topic: string, signal?: AbortSignal): Promise<TopicShape> {
    const follower = this.#followers.get(topic);
    if (follower !== undefined && !follower.stopped && (follower.missing || follower.shape() !== undefined)) {
      await this.#checked(follower, signal);
      if (follower.missing) throw new TopicNotFoundError(topic);
      const shape = follower.shape();
      if (shape !== undefined && shape.partitions > 0) return shape;
    }
    const loading = this.#shapes.get(topic, () => this.#loadShape(topic), {
      waitMs: this.#tuning.metadataWaitMs,
    });
    const shape = await (signal === undefined ? loading : untilAborted(loading, signal));
    const at = this.#shapes.peek(topic)?.at ?? 0;
    if (Date.now() - at > this.#tuning.metadataMaxAgeMs + this.#tuning.metadataWaitMs)
      this.#servedStale(topic);
    if (shape === null) throw new TopicNotFoundError(topic);
    return shape;
  }

  /** Asks the broker for a topic nobody follows; what changed reaches the pending produce calls. */
  async #loadShape(topic: string): Promise<TopicShape | null> {
    const metadata = await this.#client(topic).metadata([topic], {
      signal: AbortSignal.any([this.#stopping.signal, AbortSignal.timeout(CONFIG_TIMEOUT_MS)]),
    });
    const found = metadata.topics.find((t) => t.name === topic);
    const code = found?.error?.brokerCode;
    let shape: TopicShape | null;
    if (found === undefined || code === 3 || code === 100) shape = null;
    else if (found.error !== null) throw found.error;
    else if (found.partitions.length === 0) throw new Error(`topic "${topic}" has no partitions`);
    else shape = { topicId: found.topicId, partitions: found.partitions.length };
    const before = this.#shapes.peek(topic)?.value;
    if (before !== undefined) this.#reshaped(topic, before, shape);
    this.#pending.reshaped(topic, shape ?? undefined);
    this.#stale.delete(topic);
    return shape;
  }

  /** Logs and counts what changed of a topic produced to but not followed. */
  #reshaped(topic: string, before: TopicShape | null, after: TopicShape | null): void {
    let change: TopicLifecycleChange | undefined;
    if (before !== null && after === null) change = 'deleted';
    else if (before !== null && after !== null && before.topicId !== after.topicId) change = 'recreated';
    else if (before !== null && after !== null && after.partitions > before.partitions)
      change = 'partitions_added';
    if (change === undefined) return;
    this.#metrics?.topicChanged(topic, change);
    this.#log.info({ topic, change, before, after }, 'topic produced to changed');
  }

  async produceConfig(topic: string, options: AttachOptions = {}): Promise<CachedTopicConfig> {
    if (this.#store === undefined || this.#stopping.signal.aborted)
      throw new Error(`binding ${this.name} is not running`);
    this.#waits.checkReached(topic);
    const started = Date.now();
    const { signal, timeoutMs } = options;
    // The partition count is what produce() needs next, and asking for it tells a missing topic.
    await this.#waits.within(this.#shape(topic, signal), topic, 'partitions', options);
    const left = timeoutMs === undefined ? {} : { timeoutMs: timeoutMs - (Date.now() - started) };
    // Asked for whoever needs it, not bounded by this caller's signal: only the wait for it is.
    const config = this.#topicConfig(topic, this.#stopping.signal, true);
    return this.#waits.within(config, topic, 'config', {
      ...(signal === undefined ? {} : { signal }),
      ...left,
    });
  }

  /**
   * Why no broker of the cluster behind `topic` answers now, if none does: what a request that
   * waited for the cache to catch up with the topic is told.
   */
  unreachable(topic: string): string | undefined {
    return this.#reachability(topic)?.unreachable;
  }

  #reachability(topic: string): KafkaReachability | undefined {
    try {
      return this.#client(topic).reachability?.(topic);
    } catch {
      return undefined; // no exit for the topic, or not started: whoever asked fails on that
    }
  }

  #client(topic: string): KafkaApi {
    const exit = this.#routes.exitFor(topic);
    if (exit === undefined) throw new Error(`binding ${this.name}: no exit for topic "${topic}"`);
    const binding = this.#context.lookup(exit);
    if (!isKafkaApi(binding)) throw new Error(`binding ${this.name}: exit ${exit} is not a kafka client`);
    return binding;
  }

  /** Stops following `topic` unless it is in use. */
  #unfollow(topic: string): void {
    const follower = this.#followers.get(topic);
    if (follower === undefined || follower.attachments > 0) return;
    this.#followers.delete(topic);
    this.#log.debug({ topic }, 'no longer following topic');
    void follower.stop();
  }

  #follower(topic: string, bootstrap: boolean): TopicFollower {
    const known = this.#followers.get(topic);
    if (known !== undefined && !known.stopped) return known;
    const store = this.#store;
    const commits = this.#commits;
    const ingest = this.#ingest;
    if (store === undefined || commits === undefined || ingest === undefined)
      throw new Error(`binding ${this.name} is not running`);
    const defaultOffset = this.#defaultOffset(topic) ?? DEFAULT_OFFSET;
    const host: TopicHost = {
      store,
      commits,
      ingest,
      produced: this.#produced,
      log: this.#log,
      tuning: this.#tuning,
      transform: this.#transforms.forTopic(topic),
      client: (name) => this.#client(name),
      config: (name, signal) => this.#topicConfig(name, signal),
      idle: (follower) => {
        if (this.#followers.get(follower.name) === follower) this.#unfollow(follower.name);
      },
      used: (name) => {
        this.#lastUsed.set(name, Date.now());
      },
      shaped: (name, shape) => {
        this.#stale.delete(name);
        this.#pending.reshaped(name, shape);
      },
      changed: (name, change) => this.#metrics?.topicChanged(name, change),
    };
    const follower = new TopicFollower(
      host,
      topic,
      bootstrap || this.#bootstrap.includes(topic),
      defaultOffset,
    );
    this.#followers.set(topic, follower);
    follower.start();
    return follower;
  }

  /**
   * The topic's config, asked for again once older than configRefreshMs; with `stale`, an older
   * one is answered at once while it is asked for. Callers at the same time share one request,
   * made on the binding's own signal so that one caller giving up fails none of the others.
   */
  #topicConfig(topic: string, signal: AbortSignal, stale = false): Promise<CachedTopicConfig> {
    const loading = this.#configs.get(
      topic,
      async () =>
        parseTopicConfig(
          await this.#client(topic).describeTopicConfigs(topic, {
            signal: AbortSignal.any([this.#stopping.signal, AbortSignal.timeout(CONFIG_TIMEOUT_MS)]),
          }),
        ),
      { stale },
    );
    return untilAborted(loading, signal);
  }

  /**
   * Expires and compacts every cached partition per its topic's config, then evicts down to the
   * byte budget if there is one. Runs on the binding's own timer; exposed so that an embedding
   * application can force a pass.
   */
  async maintainOnce(signal: AbortSignal = this.#stopping.signal): Promise<void> {
    await this.#maintenance?.once(signal);
  }

  #cacheMaintenance(store: CacheStore, metrics: CacheServerMetrics): CacheMaintenance {
    return new CacheMaintenance({
      store,
      metrics,
      log: this.#log,
      tuning: this.#tuning,
      maxBytes: this.#maxBytes,
      bootstrap: this.#bootstrap,
      follower: (topic) => this.#followers.get(topic),
      lastUsed: (topic) => this.#lastUsed.get(topic) ?? 0,
      cachedConfig: (topic) => this.#configs.peek(topic),
      config: (topic, signal) => this.#topicConfig(topic, signal),
      client: (topic) => this.#client(topic),
    });
  }
}

export const createCacheServerBinding: BindingFactory = (context) => new CacheServerBinding(context);
