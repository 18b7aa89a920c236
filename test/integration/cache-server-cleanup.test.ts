// Compaction and size retention of a cache_server against a real broker, with nobody attached:
// the cache's own maintenance timer has to do the work.
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { PartitionStore } from '../../src/bindings/kafka/cache/index.ts';
import { CacheServerBinding, type CacheServerTuning } from '../../src/bindings/kafka/cache_server/index.ts';
import { KafkaClient, type KafkaApi, type ProduceRecord } from '../../src/bindings/kafka/client/index.ts';
import { startKafka, type KafkaCluster } from '../../src/embedded/kafka/index.ts';
import type { Binding } from '../../src/engine/binding.ts';
import { kafkaExit } from '../support/kafka-exit.ts';

const TUNING: Partial<CacheServerTuning> = {
  metadataRefreshMs: 500,
  configRefreshMs: 500,
  maintenanceIntervalMs: 200,
  retryInitialMs: 100,
  retryMaxMs: 1_000,
  durability: 'none',
};

const logger = pino({ level: process.env['KGATE_TEST_LOG'] ?? 'silent' });
let kafka: KafkaCluster;
let client: KafkaClient;
let root: string;
const running = new Set<CacheServerBinding>();

before(async () => {
  kafka = await startKafka();
  client = new KafkaClient({ servers: [kafka.bootstrap] });
  await client.start(AbortSignal.timeout(30_000));
  root = await mkdtemp(join(tmpdir(), 'kgate-cache-cleanup-'));
});

after(async () => {
  for (const server of running) await server.stop(AbortSignal.timeout(5_000));
  await client?.close();
  await kafka?.stop();
  if (root !== undefined) await rm(root, { recursive: true, force: true });
});

function exit(): Binding & KafkaApi {
  return kafkaExit(client);
}

async function server(name: string, topic: string): Promise<PartitionStore> {
  const binding = new CacheServerBinding(
    {
      config: {
        name,
        type: 'kafka',
        kind: 'cache_server',
        options: { bootstrap: [topic] },
        routes: [],
        exit: 'south',
      },
      logger,
      metrics: new Registry(),
      stateDir: join(root, name),
      lookup: () => exit(),
    },
    TUNING,
  );
  await binding.start(AbortSignal.timeout(10_000));
  running.add(binding);
  const store = binding.store;
  assert.ok(store !== undefined);
  return store.partition(topic, 0);
}

async function waitFor(what: string, condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(50);
  }
}

interface Latest {
  readonly offset: bigint;
  readonly value: Buffer | null;
  readonly timestamp: number;
}

describe('cache_server cleanup with nobody attached', () => {
  it('serves exactly the latest record per key; tombstones stay for delete.retention.ms, then go', async () => {
    const deleteRetentionMs = 6_000;
    const topic = `compact-${Date.now()}`;
    await kafka.createTopic(topic, {
      partitions: 1,
      configs: {
        'cleanup.policy': 'compact',
        'min.compaction.lag.ms': '0',
        'delete.retention.ms': String(deleteRetentionMs),
      },
    });
    const cache = await server('compact', topic);

    // Many versions per key, tombstones among them (some superseded, some last).
    const model = new Map<string, Latest>();
    let offset = 0n;
    const keys = 60;
    for (let version = 0; version < 25; version++) {
      const records: ProduceRecord[] = [];
      for (let k = 0; k < keys; k++) {
        const lastVersion = version === 24;
        const tombstone = lastVersion ? k % 4 === 0 : Math.random() < 0.15;
        records.push({
          key: `key-${k}`,
          value: tombstone ? null : randomBytes(1 + ((k * 7 + version) % 200)),
        });
      }
      const result = await client.produce(topic, 0, records);
      records.forEach((r, i) => {
        assert.ok(typeof r.key === 'string');
        const value = r.value === null || r.value === undefined ? null : Buffer.from(r.value);
        model.set(r.key, { offset: result.baseOffset + BigInt(i), value, timestamp: Date.now() });
      });
      offset = result.baseOffset + BigInt(records.length);
    }
    const producedAt = Date.now();
    const live = [...model].filter(([, l]) => l.value !== null);
    const dead = [...model].filter(([, l]) => l.value === null);
    assert.ok(dead.length > 0 && live.length > 0);

    const snapshot = (): Array<[string, bigint, Buffer | null]> =>
      cache.read(0n, { maxRecords: 10_000 }).records.map((r) => [r.key?.toString() ?? '', r.offset, r.value]);
    const expect = (entries: Array<[string, Latest]>): Array<[string, bigint, Buffer | null]> =>
      entries
        .map(([k, l]): [string, bigint, Buffer | null] => [k, l.offset, l.value])
        .sort((a, b) => (a[1] < b[1] ? -1 : 1));

    await waitFor(
      'compacted to one record per key',
      () => cache.nextOffset === offset && cache.stats().records === keys,
    );
    const compactedAt = Date.now();
    if (compactedAt - producedAt < deleteRetentionMs - 1_000)
      assert.deepEqual(snapshot(), expect([...model]), 'latest per key, tombstones included');
    for (const [key, latest] of live) assert.equal(cache.latestOffsetOf(Buffer.from(key)), latest.offset);

    // Tombstones leave only once delete.retention.ms past their timestamp.
    const newestTombstone = Math.max(...dead.map(([, l]) => l.timestamp));
    await waitFor('tombstones gone', () => cache.stats().records === live.length, deleteRetentionMs + 15_000);
    const goneAt = Date.now();
    assert.ok(
      goneAt - newestTombstone >= deleteRetentionMs - 250,
      `tombstones removed ${goneAt - newestTombstone} ms after they were written`,
    );
    assert.deepEqual(snapshot(), expect(live));
    for (const [key] of dead) assert.equal(cache.latestOffsetOf(Buffer.from(key)), null);
    for (const [key, latest] of live) assert.equal(cache.latestOffsetOf(Buffer.from(key)), latest.offset);
    assert.equal(cache.nextOffset, offset);
  });

  it('keeps the cache within retention.bytes plus one segment while the topic grows past it', async () => {
    const retentionBytes = 2 * 1024 * 1024;
    const segmentBytes = 1024 * 1024; // the smallest segment.bytes the broker accepts
    const topic = `bytes-${Date.now()}`;
    await kafka.createTopic(topic, {
      partitions: 1,
      configs: { 'retention.bytes': String(retentionBytes), 'segment.bytes': String(segmentBytes) },
    });
    const cache = await server('bytes', topic);
    const bound = retentionBytes + segmentBytes;
    let produced = 0;
    let peak = 0;
    for (let round = 0; round < 16; round++) {
      const records = Array.from({ length: 512 }, () => ({ key: null, value: randomBytes(1024) }));
      const result = await client.produce(topic, 0, records);
      produced += 512 * 1024;
      const end = result.baseOffset + 512n;
      await waitFor(`round ${round} cached`, () => cache.nextOffset === end);
      // Between two maintenance passes the cache may hold what arrived since the last one; the
      // timer must bring it back under the bound without anyone asking.
      await waitFor(
        `round ${round} within bound (${cache.stats().bytes} bytes)`,
        () => cache.stats().bytes <= bound,
      );
      peak = Math.max(peak, cache.stats().bytes);
    }
    assert.ok(produced > 2 * bound, 'the topic grew well past retention.bytes');
    const stats = cache.stats();
    assert.ok(stats.bytes >= retentionBytes, `over-deleted: ${stats.bytes} bytes left`);
    assert.ok(stats.logStartOffset > 0n);
    assert.equal(stats.firstOffset, stats.logStartOffset);
    assert.equal(BigInt(stats.records), stats.nextOffset - stats.logStartOffset, 'no hole in what is kept');
    process.stderr.write(
      `# retention.bytes: produced ${produced} B, cache ${stats.bytes} B (peak after pass ${peak}, bound ${bound})\n`,
    );
  });
});
