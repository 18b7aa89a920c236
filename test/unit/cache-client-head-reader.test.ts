import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CacheStore, type PartitionStore, type RecordInput } from '../../src/bindings/kafka/cache/index.ts';
import { HeadReader, type HeadStep, type OpenOptions } from '../../src/bindings/kafka/cache_client/index.ts';
import { CacheStream } from '../../src/bindings/kafka/cache_client/stream.ts';
import type {
  CacheServerApi,
  CachedTopic,
  CachedTopicConfig,
  TopicChange,
} from '../../src/bindings/kafka/cache_server/api.ts';
import { topicConfig } from '../support/topic-config.ts';

const dirs: string[] = [];
const stores: CacheStore[] = [];
after(async () => {
  for (const s of stores) await s.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const CONFIG: CachedTopicConfig = topicConfig({ cleanupPolicy: ['compact'] });

/** A compacted CachedTopic over real partition stores, fed by the test. */
class FakeTopic implements CachedTopic {
  readonly topic = 't';
  readonly config = CONFIG;
  readonly compacted = true;
  readonly defaultOffset = 'historical' as const;
  readonly cache: CacheStore;
  readonly ready: Set<number>;
  readonly #count: number;
  readonly #listeners = new Set<(change: TopicChange) => void>();

  constructor(partitions: number, notReady: number[] = []) {
    const dir = mkdtempSync(join(tmpdir(), 'kgate-head-reader-'));
    dirs.push(dir);
    this.cache = CacheStore.open(dir, { durability: 'none', mapSize: 64 * 1024 * 1024 });
    stores.push(this.cache);
    this.#count = partitions;
    this.ready = new Set(
      Array.from({ length: partitions }, (_, i) => i).filter((p) => !notReady.includes(p)),
    );
  }
  partitions(): readonly number[] {
    return Array.from({ length: this.#count }, (_, i) => i);
  }
  producedEnd(): bigint {
    return -1n;
  }
  isReady(partition: number): boolean {
    return this.ready.has(partition);
  }
  store(partition: number): PartitionStore {
    return this.cache.partition(this.topic, partition);
  }
  onChange(listener: (change: TopicChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  release(): void {}
  append(partition: number, records: RecordInput[], highWatermark?: bigint): void {
    const store = this.store(partition);
    const last = records[records.length - 1];
    const end = last === undefined ? store.nextOffset : last.offset + 1n;
    const hwm = highWatermark ?? end;
    store.append(records, { highWatermark: hwm, lastStableOffset: hwm });
    for (const l of this.#listeners) l({ type: 'appended', partition, nextOffset: store.nextOffset });
  }
}

const server: CacheServerApi = {
  attach: () => Promise.reject(new Error('unused')),
  produce: () => Promise.reject(new Error('unused')),
};

function rec(offset: number, key: string, value: string | null): RecordInput {
  return {
    offset: BigInt(offset),
    timestamp: 1_000 + offset,
    key: Buffer.from(key),
    value: value === null ? null : Buffer.from(value),
  };
}

function reader(topic: FakeTopic, options: OpenOptions = {}): HeadReader {
  return new HeadReader(
    new CacheStream({ topic, exit: server, options, defaultOffset: 'historical' }),
    topic,
  );
}

async function readAll(r: HeadReader, ms = 1_000, each?: (step: HeadStep) => void): Promise<string[]> {
  const out: string[] = [];
  const until = Date.now() + ms;
  for (;;) {
    const step = await r.step(until, true);
    each?.(step);
    if (step.type !== 'message') {
      const late = await r.finish();
      if (late !== undefined) out.push(`${late.key?.toString()}=${late.value?.toString()}`);
      out.push(step.type);
      return out;
    }
    out.push(`${step.message.key?.toString()}=${step.message.value?.toString()}`);
  }
}

describe('cache_client head reader', () => {
  it('stops at the head even when the last records are filtered out', async () => {
    const topic = new FakeTopic(2);
    topic.append(0, [rec(0, 'a', '1'), rec(1, 'b', '2'), rec(2, 'c', '3')]);
    const r = reader(topic, { filters: [[{ key: Buffer.from('a') }]] });
    assert.deepEqual(await readAll(r), ['a=1', 'head']);
    assert.deepEqual(
      r.progress,
      new Map([
        [0, 3n],
        [1, 0n],
      ]),
    );
  });

  it('waits for a partition the cache has not fetched yet, then gives up', async () => {
    const topic = new FakeTopic(2, [1]);
    topic.append(0, [rec(0, 'a', '1')]);
    assert.deepEqual(await readAll(reader(topic), 100), ['a=1', 'timeout']);
  });

  it('waits for the cache to reach the broker end it knew of', async () => {
    const topic = new FakeTopic(1);
    // The broker has 3 records; the cache holds the first only so far.
    topic.append(0, [rec(0, 'a', '1')], 3n);
    const r = reader(topic);
    const pending = readAll(r, 2_000);
    setTimeout(() => topic.append(0, [rec(1, 'b', '2'), rec(2, 'c', '3')]), 50);
    assert.deepEqual(await pending, ['a=1', 'b=2', 'c=3', 'head']);
  });

  it('never loses a key whose value is replaced while the snapshot is read', async () => {
    const topic = new FakeTopic(1);
    topic.append(0, [rec(0, 'a', 'a1'), rec(1, 'b', 'b1'), rec(2, 'c', 'c1')]);
    const r = reader(topic);
    let replaced = false;
    const got = await readAll(r, 1_000, () => {
      // b1 is not read yet; once b2 exists, conflation skips b1, so b2 must be read.
      if (!replaced) topic.append(0, [rec(3, 'b', 'b2')]);
      replaced = true;
    });
    assert.deepEqual(got, ['a=a1', 'c=c1', 'b=b2', 'head']);
  });
});
