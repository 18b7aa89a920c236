import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { BindingConfig, RouteTable } from '../../../config/index.ts';
import { untilAborted } from '../../../engine/abort.ts';
import type { Binding, BindingContext, BindingFactory } from '../../../engine/binding.ts';
import { KgateError } from '../../../engine/errors.ts';
import type { AttachOptions, CachedTopic, CacheServerApi, DefaultOffset } from '../cache_server/api.ts';
import type { CacheClientApi } from './api.ts';
import { lookupKey, type KeyLookup, type KeyLookupOptions } from './lookup.ts';
import { CacheClientModels, type RecordViews } from './models.ts';
import { cacheClientOptions } from './options.ts';
import { produceOnlyTopic } from './produce-topic.ts';
import { StagingBudget } from './staging.ts';
import { CacheStream, type OpenOptions } from './stream.ts';
import { topicRoutes, type TopicCondition } from '../topic-conditions.ts';
import { defaultOffsets } from '../topic-options.ts';

export type { AttachOptions, CachedTopic } from '../cache_server/api.ts';
export type { Acks } from '../client/index.ts';
/** A produce rejects with it when the message may or may not have been written. */
export { ProduceOutcomeUnknownError } from '../client/index.ts';
export { isCacheClient } from './api.ts';
export type { CacheClientApi } from './api.ts';
export { compileFilters, matchedIndexes, MAX_FILTERS } from './filters.ts';
export type {
  Condition,
  Filter,
  FilterSet,
  FilterSubject,
  HeaderValuePattern,
  SkipMany,
  SkipOne,
} from './filters.ts';
export { HeadReader } from './head-reader.ts';
export type { RecordViews } from './models.ts';
export type { HeadStep } from './head-reader.ts';
export { DEFAULT_CATCH_UP_MS, lookupKey, NotCaughtUpError } from './lookup.ts';
export type { KeyLookup, KeyLookupOptions } from './lookup.ts';
export { checkPositions } from './positions.ts';
export type { PositionCheck } from './positions.ts';
export { MessageTooLargeError, StagedMessage } from './produce.ts';
export type { ProduceAck, ProduceMessage, StagedMessageInit } from './produce.ts';
export { DEFAULT_STAGING_MAX_BYTES, StagingBudget } from './staging.ts';
export type { StagingPressure } from './staging.ts';
export { evictedHeads, UpToNow } from './up-to-now.ts';
export { CacheStream } from './stream.ts';
export type { CacheMessage, Capabilities, Isolation, OpenOptions } from './stream.ts';

/**
 * Progress as one string (`partition:offset,...`), for a client to keep and hand back to any
 * instance: the position travels with the client, not in this process.
 */
export function formatProgress(progress: ReadonlyMap<number, bigint>): string {
  return [...progress]
    .sort(([a], [b]) => a - b)
    .map(([p, o]) => `${p}:${o}`)
    .join(',');
}

/** Kafka's partitions are numbered by int32, its offsets int64: anything longer is no position. */
const MAX_PARTITION = 2 ** 31 - 1;
const MAX_OFFSET = 2n ** 63n - 1n;

/**
 * The progress `formatProgress` wrote. Progress comes back from clients (ETags, event ids), so a
 * number too long for its Kafka type is refused before it is converted: a 40 KB offset would cost
 * its BigInt conversion on the event loop only to name no offset.
 */
export function parseProgress(text: string): Map<number, bigint> {
  const out = new Map<number, bigint>();
  if (text.trim() === '') return out;
  for (const part of text.split(',')) {
    const match = /^\s*(\d{1,10}):(\d{1,19})\s*$/.exec(part);
    const partition = Number(match?.[1]);
    const offset = match === null ? -1n : BigInt(match[2] ?? '-1');
    if (match === null || partition > MAX_PARTITION || offset > MAX_OFFSET)
      throw new KgateError(
        'KGATE_INVALID_ARGUMENT',
        `progress entry ${JSON.stringify(part.slice(0, 64))} is not partition:offset`,
      );
    out.set(partition, offset);
  }
  return out;
}

function isCacheServer(binding: Binding): binding is Binding & CacheServerApi {
  const candidate = binding as Partial<CacheServerApi>;
  return typeof candidate.attach === 'function' && typeof candidate.produce === 'function';
}

/** How long opening a live stream waits for the broker's end offsets of partitions not fed yet. */
const LIVE_START_TIMEOUT_MS = 5_000;

// Metrics are shared by every cache_client binding of a registry; each collects its own label.
const bindingsByRegistry = new WeakMap<Registry, Set<CacheClientBinding>>();

function registerMetrics(registry: Registry, binding: CacheClientBinding): () => void {
  let bindings = bindingsByRegistry.get(registry);
  if (bindings === undefined) {
    const set = new Set<CacheClientBinding>();
    bindings = set;
    bindingsByRegistry.set(registry, set);
    const gauge = (name: string, help: string, value: (b: CacheClientBinding) => number): void => {
      if (registry.getSingleMetric(name) !== undefined) return;
      new Gauge({
        name,
        help,
        labelNames: ['binding'],
        registers: [registry],
        collect() {
          this.reset();
          for (const b of set) this.set({ binding: b.name }, value(b));
        },
      });
    };
    gauge('kgate_cache_client_streams', 'Open cache_client streams', (b) => b.streamCount);
    gauge(
      'kgate_cache_client_buffered_bytes',
      'Record bytes read from the cache and not yet delivered, all streams together',
      (b) => b.bufferedBytes,
    );
    gauge(
      'kgate_cache_client_staged_bytes',
      'Bytes of produced values staged and not yet acknowledged, all producers together',
      (b) => b.staging.usedBytes,
    );
    const counter = (name: string, help: string, value: (b: CacheClientBinding) => number): void => {
      if (registry.getSingleMetric(name) !== undefined) return;
      new Counter({
        name,
        help,
        labelNames: ['binding'],
        registers: [registry],
        collect() {
          this.reset();
          for (const b of set) this.inc({ binding: b.name }, value(b));
        },
      });
    };
    counter(
      'kgate_cache_client_staging_waits_total',
      'Staged writes that waited for the staging budget to have room',
      (b) => b.staging.waits,
    );
    counter(
      'kgate_cache_client_staging_connection_waits_total',
      "Staged writes that waited because their client connection's share of the staging budget was full",
      (b) => b.staging.ownerWaits,
    );
  }
  bindings.add(binding);
  const set = bindings;
  return () => set.delete(binding);
}

/**
 * The `kafka cache_client` binding: serves merged topic streams from the cache of the
 * cache_server its routes lead to, and produces through it. North-side bindings and embedding
 * applications call open().
 */
export class CacheClientBinding implements Binding, CacheClientApi {
  readonly name: string;
  readonly config: BindingConfig;
  readonly #context: BindingContext;
  readonly #log: Logger;
  readonly #defaultOffset: (topic: string) => DefaultOffset | undefined;
  readonly #routes: RouteTable<string, TopicCondition>;
  readonly #streams = new Set<CacheStream>();
  /** Bounds the produced values all this binding's streams stage at once. */
  readonly staging: StagingBudget;
  /** The topics' models, shared by every stream and lookup of this binding. */
  readonly models: CacheClientModels;
  #unregister: (() => void) | undefined;
  #stopped = false;

  constructor(context: BindingContext) {
    this.#context = context;
    this.config = context.config;
    this.name = context.config.name;
    this.#log = context.logger;
    const options = cacheClientOptions(context.config.options);
    this.#defaultOffset = defaultOffsets(options.topics);
    this.#routes = topicRoutes(context.config);
    this.models = new CacheClientModels(
      this.name,
      options.topics,
      context.catalogs ?? {},
      context.metrics,
      context.logger,
      context.configFile,
    );
    this.staging = new StagingBudget(
      options.stagingMaxBytes,
      options.stagingMaxBytesPerConnection,
      options.stagingStallMs,
    );
  }

  get streamCount(): number {
    return this.#streams.size;
  }

  get bufferedBytes(): number {
    let total = 0;
    for (const s of this.#streams) total += s.bufferedBytes;
    return total;
  }

  start(_signal: AbortSignal): Promise<void> {
    // Every exit is checked now so that a config wiring this binding to something other than a
    // cache_server fails at startup rather than on the first open().
    const exits = new Set([this.config.exit, ...this.config.routes.map((r) => r.exit)]);
    for (const exit of exits) {
      if (exit === undefined) continue;
      const binding = this.#context.lookup(exit);
      if (!isCacheServer(binding))
        return Promise.reject(new Error(`binding ${this.name}: exit ${exit} is not a kafka cache_server`));
    }
    this.#unregister = registerMetrics(this.#context.metrics, this);
    this.#stopped = false;
    return Promise.resolve();
  }

  stop(_signal: AbortSignal): Promise<void> {
    this.#stopped = true;
    for (const stream of [...this.#streams]) stream.close();
    this.#unregister?.();
    this.#unregister = undefined;
    return Promise.resolve();
  }

  /** The cache_server serving `topic`, by this binding's routes. */
  exitFor(topic: string): CacheServerApi {
    const exit = this.#routes.exitFor(topic);
    if (exit === undefined) throw new Error(`binding ${this.name}: no route for topic ${topic}`);
    const binding = this.#context.lookup(exit);
    if (!isCacheServer(binding))
      throw new Error(`binding ${this.name}: exit ${exit} is not a kafka cache_server`);
    return binding;
  }

  /**
   * For lookups and head reads on one attachment; the open() of a stream attaches on its own.
   * `options` bound the wait for the topic's metadata (see AttachOptions).
   */
  async attach(topic: string, options: AttachOptions = {}): Promise<CachedTopic> {
    return this.exitFor(topic).attach(topic, options);
  }

  /** The models of `topic`, for key lookups made on an attachment (see CacheClientApi.viewsFor). */
  viewsFor(topic: string): RecordViews | undefined {
    return this.models.viewsFor(topic);
  }

  /** Why no broker behind `topic` answers now, if none does; see CacheServerApi.unreachable. */
  unreachable(topic: string): string | undefined {
    return this.exitFor(topic).unreachable?.(topic);
  }

  /**
   * The current record of `key` on `topic`, answered from the cache's key index with one probe
   * per partition instead of a stream over the whole topic; see lookupKey for what it answers
   * and how it waits. Meant for compacted topics. Rejects like open() when the topic cannot be
   * served, and with NotCaughtUpError when the cache lags the topic for longer than allowed.
   */
  async lookup(topic: string, key: Buffer, options: KeyLookupOptions = {}): Promise<KeyLookup> {
    if (this.#stopped) throw new Error(`binding ${this.name} is stopped`);
    options.signal?.throwIfAborted();
    const cached = await this.exitFor(topic).attach(topic, {
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      ...(options.catchUpMs === undefined ? {} : { timeoutMs: options.catchUpMs }),
    });
    try {
      const views = this.models.viewsFor(topic);
      return await lookupKey(cached, key, views === undefined ? options : { ...options, views });
    } finally {
      cached.release();
    }
  }

  /** Opens a stream on `topic`; rejects when the topic cannot be served (unknown, not authorized). */
  async open(topic: string, options: OpenOptions = {}): Promise<CacheStream> {
    if (this.#stopped) throw new Error(`binding ${this.name} is stopped`);
    const exit = this.exitFor(topic);
    const signal = options.signal;
    signal?.throwIfAborted();
    const waits: AttachOptions = {
      ...(signal === undefined ? {} : { signal }),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    };
    const attaching =
      options.capabilities === 'produce' && exit.produceConfig !== undefined
        ? exit.produceConfig(topic, waits).then((config) => produceOnlyTopic(topic, config))
        : exit.attach(topic, waits);
    let cached;
    if (signal === undefined) cached = await attaching;
    else {
      try {
        cached = await untilAborted(attaching, signal, 'open aborted');
      } catch (error) {
        // An attachment that arrives after the caller gave up must still be released.
        attaching.then(
          (t) => t.release(),
          () => undefined,
        );
        throw error;
      }
    }
    if (this.#stopped) {
      cached.release();
      throw new Error(`binding ${this.name} is stopped`);
    }
    const configured = this.#defaultOffset(topic);
    const defaultOffset = options.defaultOffset ?? configured ?? cached.defaultOffset;
    let stream: CacheStream;
    try {
      const views = this.models.viewsFor(topic);
      const liveStarts = await this.#liveStarts(cached, options, defaultOffset);
      stream = new CacheStream({
        topic: cached,
        exit,
        options,
        defaultOffset,
        liveStarts,
        onClose: (s) => this.#streams.delete(s),
        staging: this.staging,
        stagingName: `staging.maxBytes of binding ${this.name}`,
        ...(views === undefined ? {} : { views }),
      });
    } catch (error) {
      cached.release();
      throw error;
    }
    this.#streams.add(stream);
    this.#log.debug({ topic, capabilities: stream.capabilities }, 'stream opened');
    return stream;
  }

  /**
   * Where a live stream starts on partitions the cache is not feeding yet: the broker's end now.
   * Without it such a partition would start at the cache's head after its first fetch, skipping
   * whatever was produced between the open and that fetch. A broker that does not answer in time
   * leaves those partitions to that fallback rather than failing the open.
   */
  async #liveStarts(
    cached: CachedTopic,
    options: OpenOptions,
    defaultOffset: DefaultOffset,
  ): Promise<ReadonlyMap<number, bigint>> {
    const none = new Map<number, bigint>();
    if (options.capabilities === 'produce' || cached.compacted || defaultOffset !== 'live') return none;
    if (options.partitions !== undefined && Object.keys(options.partitions).length > 0) return none;
    const pending = cached.partitions().filter((p) => !cached.isReady(p));
    if (pending.length === 0 || cached.endOffsets === undefined) return none;
    const signals = [AbortSignal.timeout(LIVE_START_TIMEOUT_MS)];
    if (options.signal !== undefined) signals.push(options.signal);
    try {
      return await cached.endOffsets(
        pending,
        options.isolation ?? 'read_committed',
        AbortSignal.any(signals),
      );
    } catch (error) {
      options.signal?.throwIfAborted();
      this.#log.warn(
        {
          topic: cached.topic,
          partitions: pending,
          err: error,
        },
        'could not ask the broker where live starts; those partitions start at the cache head once fed',
      );
      return none;
    }
  }
}

export const createCacheClientBinding: BindingFactory = (context) => new CacheClientBinding(context);
