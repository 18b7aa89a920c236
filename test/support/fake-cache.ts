import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CacheStore } from '../../src/bindings/kafka/cache/index.ts';
import type { PartitionStore, RecordInput } from '../../src/bindings/kafka/cache/index.ts';
import {
  CacheStream,
  type CacheClientApi,
  type OpenOptions,
  type StagingBudget,
} from '../../src/bindings/kafka/cache_client/index.ts';
import type {
  CacheServerApi,
  CachedTopic,
  CachedTopicConfig,
  DefaultOffset,
  TopicChange,
} from '../../src/bindings/kafka/cache_server/api.ts';
import type { ProduceOptions, ProduceRecord, ProduceResult } from '../../src/bindings/kafka/client/index.ts';
import type { Binding } from '../../src/engine/binding.ts';
import { topicConfig } from './topic-config.ts';

// The cache_server side of the cache_client, faked over real partition stores: unit tests of the
// cache_client and of the proxies in front of it feed the stores themselves instead of a broker.

const dirs: string[] = [];
const stores: CacheStore[] = [];

/** Closes every fake topic's store and removes its directory; for a test file's `after`. */
export async function closeFakeTopics(): Promise<void> {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

export interface FakeTopicOptions {
  /** Default 1. */
  readonly partitions?: number;
  /** Default false; decides the config's cleanup policy. */
  readonly compacted?: boolean;
  /** Default 'historical'. */
  readonly defaultOffset?: DefaultOffset;
  /** Partitions the cache is not feeding yet (setReady() makes them ready). */
  readonly notReady?: readonly number[];
  /** Over topicConfig()'s defaults (1 KiB messages). */
  readonly config?: Partial<CachedTopicConfig>;
}

/** Watermarks an append leaves behind, when the broker is ahead of what the cache holds. */
export interface AppendEnds {
  /** Default: the end of the records appended. */
  readonly highWatermark?: bigint;
  /** Default: the high watermark. */
  readonly lastStableOffset?: bigint;
}

/** A CachedTopic over real partition stores, driven by the test instead of a broker. */
export class FakeTopic implements CachedTopic {
  readonly topic: string;
  readonly config: CachedTopicConfig;
  readonly compacted: boolean;
  readonly defaultOffset: DefaultOffset;
  readonly cache: CacheStore;
  /** Ends of acknowledged produces, as a cache_server would report them. */
  readonly produced = new Map<number, bigint>();
  readonly #partitions: number[];
  readonly #ready = new Set<number>();
  readonly #listeners = new Set<(change: TopicChange) => void>();
  released = 0;
  attached = 0;

  constructor(name: string, options: FakeTopicOptions = {}) {
    this.topic = name;
    const dir = mkdtempSync(join(tmpdir(), 'kgate-fake-topic-'));
    dirs.push(dir);
    this.cache = CacheStore.open(dir, { durability: 'none', mapSize: 256 * 1024 * 1024 });
    stores.push(this.cache);
    this.compacted = options.compacted ?? false;
    this.config = topicConfig({
      cleanupPolicy: this.compacted ? ['compact'] : ['delete'],
      ...options.config,
    });
    this.defaultOffset = options.defaultOffset ?? 'historical';
    this.#partitions = Array.from({ length: options.partitions ?? 1 }, (_, i) => i);
    for (const p of this.#partitions) if (!(options.notReady ?? []).includes(p)) this.#ready.add(p);
  }

  partitions(): readonly number[] {
    return [...this.#partitions];
  }
  producedEnd(partition: number): bigint {
    return this.produced.get(partition) ?? -1n;
  }
  isReady(partition: number): boolean {
    return this.#ready.has(partition);
  }
  store(partition: number): PartitionStore {
    return this.cache.partition(this.topic, partition);
  }
  onChange(listener: (change: TopicChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  release(): void {
    this.released++;
  }
  get listeners(): number {
    return this.#listeners.size;
  }

  emit(change: TopicChange): void {
    for (const l of this.#listeners) l(change);
  }

  /** Appends as the cache_server would, and announces it. */
  append(partition: number, records: RecordInput[], ends: AppendEnds = {}): void {
    const store = this.store(partition);
    const last = records[records.length - 1];
    const end = last === undefined ? store.nextOffset : last.offset + 1n;
    const highWatermark = ends.highWatermark ?? end;
    store.append(records, { highWatermark, lastStableOffset: ends.lastStableOffset ?? highWatermark });
    this.emit({ type: 'appended', partition, nextOffset: store.nextOffset });
  }

  /** Appends one record after the partition's last; returns its offset. */
  put(partition: number, key: string, value: string | null, extra: Partial<RecordInput> = {}): bigint {
    const offset = this.store(partition).nextOffset;
    this.append(partition, [
      {
        offset,
        timestamp: extra.timestamp ?? 1_000 + Number(offset),
        key: Buffer.from(key),
        value: value === null ? null : Buffer.from(value),
        ...extra,
      },
    ]);
    return offset;
  }

  /** Records offsets the broker holds that the cache has not fetched yet. */
  behind(partition: number, highWatermark: bigint): void {
    this.store(partition).setWatermarks({ highWatermark, lastStableOffset: highWatermark });
  }

  setStable(partition: number, lastStableOffset: bigint): void {
    const store = this.store(partition);
    store.setWatermarks({ lastStableOffset });
    this.emit({ type: 'appended', partition, nextOffset: store.nextOffset });
  }

  setReady(partition: number): void {
    this.#ready.add(partition);
    this.emit({ type: 'ready', partition });
  }

  /** The topic has `count` partitions now, as after a recreation with fewer: the others vanish. */
  shrink(count: number): void {
    this.#partitions.splice(count);
    for (const p of [...this.#ready]) if (p >= count) this.#ready.delete(p);
    this.emit({ type: 'partitions', partitions: this.partitions() });
  }

  grow(count: number): void {
    const added: number[] = [];
    for (let p = this.#partitions.length; p < count; p++) added.push(p);
    this.#partitions.push(...added);
    this.emit({ type: 'partitions', partitions: this.partitions() });
    for (const p of added) this.setReady(p);
  }
}

/** A cache_server serving the fake topics registered with it; produce only records what it is given. */
export class FakeCacheServer implements CacheServerApi {
  readonly topics = new Map<string, FakeTopic>();
  readonly produced: {
    topic: string;
    partition: number | undefined;
    records: readonly ProduceRecord[];
    options?: ProduceOptions;
  }[] = [];
  /** What the next produce calls reject with, in order, instead of being recorded. */
  readonly failures: Error[] = [];

  constructor(...topics: FakeTopic[]) {
    for (const t of topics) this.topics.set(t.topic, t);
  }

  attach(topic: string): Promise<CachedTopic> {
    const t = this.topics.get(topic);
    if (t === undefined) return Promise.reject(new Error(`topic ${topic} does not exist`));
    t.attached++;
    return Promise.resolve(t);
  }

  produce(
    topic: string,
    partition: number | undefined,
    records: readonly ProduceRecord[],
    options?: ProduceOptions,
  ): Promise<ProduceResult & { readonly partition: number }> {
    const failure = this.failures.shift();
    if (failure !== undefined) return Promise.reject(failure);
    this.produced.push({ topic, partition, records, ...(options === undefined ? {} : { options }) });
    const p = partition ?? 0;
    const base = BigInt(this.produced.length - 1);
    return Promise.resolve({
      topic,
      partition: p,
      baseOffset: base,
      offsets: records.map((_, i) => base + BigInt(i)),
      logAppendTime: null,
    });
  }
}

/** A stream over a fake topic, as a cache_client's open() builds it (no staging budget shared). */
export function fakeStream(
  topic: FakeTopic,
  options: OpenOptions = {},
  server: CacheServerApi = new FakeCacheServer(),
): CacheStream {
  return new CacheStream({ topic, exit: server, options, defaultOffset: topic.defaultOffset });
}

/**
 * A `kafka cache_client` exit over a fake cache_server: what the proxies need of one, and no more.
 * Its streams stage produced bodies in `staging` when given, as a binding's streams share its budget.
 */
export function fakeCacheClient(
  name: string,
  server: FakeCacheServer,
  staging?: StagingBudget,
): Binding & CacheClientApi {
  return {
    name,
    start: () => Promise.resolve(),
    stop: () => Promise.resolve(),
    async open(topic: string, options: OpenOptions = {}): Promise<CacheStream> {
      options.signal?.throwIfAborted();
      const attached = await server.attach(topic);
      return new CacheStream({
        topic: attached,
        exit: server,
        options,
        defaultOffset: attached.defaultOffset,
        ...(staging === undefined ? {} : { staging }),
      });
    },
    attach: (topic: string) => server.attach(topic),
  };
}
