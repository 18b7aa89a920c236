// The cache byte budget against a real broker: past it, the maintenance timer evicts the oldest
// records of the least recently used topics that are not bootstrapped, and nothing else.
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { TopicChange } from '../../src/bindings/kafka/cache_server/index.ts';
import { CacheServerBinding, type CacheServerTuning } from '../../src/bindings/kafka/cache_server/index.ts';
import { KafkaClient, type KafkaApi } from '../../src/bindings/kafka/client/index.ts';
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

const BUDGET = 1024 * 1024;
const VALUE_BYTES = 10 * 1024;

const logger = pino({ level: process.env['KGATE_TEST_LOG'] ?? 'silent' });
let kafka: KafkaCluster;
let client: KafkaClient;
let root: string;
let binding: CacheServerBinding | undefined;

before(async () => {
  kafka = await startKafka();
  client = new KafkaClient({ servers: [kafka.bootstrap] });
  await client.start(AbortSignal.timeout(30_000));
  root = await mkdtemp(join(tmpdir(), 'kgate-cache-budget-'));
});

after(async () => {
  await binding?.stop(AbortSignal.timeout(5_000));
  await client?.close();
  await kafka?.stop();
  if (root !== undefined) await rm(root, { recursive: true, force: true });
});

function exit(): Binding & KafkaApi {
  return kafkaExit(client);
}

async function waitFor(what: string, condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(50);
  }
}

/** Produces count values of VALUE_BYTES in batches; returns them in offset order. */
async function produce(topic: string, count: number): Promise<Buffer[]> {
  const values: Buffer[] = [];
  while (values.length < count) {
    const batch = Array.from({ length: Math.min(20, count - values.length) }, () => randomBytes(VALUE_BYTES));
    await client.produce(
      topic,
      0,
      batch.map((value) => ({ key: null, value })),
    );
    values.push(...batch);
  }
  return values;
}

describe('cache_server byte budget', () => {
  it('evicts least recently used topics first, never a bootstrap topic, and tells attached readers', async () => {
    const stamp = Date.now();
    const boot = `budget-boot-${stamp}`;
    const older = `budget-older-${stamp}`;
    const newer = `budget-newer-${stamp}`;
    for (const t of [boot, older, newer]) await kafka.createTopic(t, { partitions: 1 });
    // Everything is on the broker before the cache follows it, so what ends up evicted depends on
    // the order of use alone, not on which fetch happened to land first.
    const bootValues = await produce(boot, 30);
    await produce(older, 100);
    await produce(newer, 100);

    const metrics = new Registry();
    binding = new CacheServerBinding(
      {
        config: {
          name: 'budget',
          type: 'kafka',
          kind: 'cache_server',
          options: { bootstrap: [boot] },
          routes: [],
          exit: 'south',
        },
        logger,
        metrics,
        stateDir: join(root, 'budget'),
        cacheMaxBytes: BUDGET,
        lookup: () => exit(),
      },
      TUNING,
    );
    await binding.start(AbortSignal.timeout(10_000));
    const store = binding.store;
    assert.ok(store !== undefined);

    // Attached in one order and released in the other: the release is the last use that counts.
    const a = await binding.attach(older);
    const b = await binding.attach(newer);
    b.release();
    await delay(30);
    a.release();
    const lru = newer;
    const recent = older;

    // Following continues through the linger, so all of it is fetched, and the timer trims it.
    await waitFor('everything fetched', () =>
      [boot, older, newer].every((t) => store.partition(t, 0).nextOffset >= (t === boot ? 30n : 100n)),
    );
    await waitFor(
      `within budget (${store.stats().bytes} bytes)`,
      () => store.stats().bytes <= BUDGET && store.partition(lru, 0).stats().records === 0,
    );

    const bootStore = store.partition(boot, 0);
    const read = bootStore.read(0n, { maxRecords: 100, maxBytes: 10 * 1024 * 1024 });
    assert.equal(read.records.length, bootValues.length, 'every bootstrap record is still cached');
    read.records.forEach((r, i) => {
      assert.equal(r.offset, BigInt(i));
      assert.ok(r.value !== null && bootValues[i]?.equals(r.value), `bootstrap record ${i} intact`);
    });

    const lruStats = store.partition(lru, 0).stats();
    assert.equal(lruStats.records, 0, 'the least recently used topic goes first');
    assert.equal(lruStats.logStartOffset, 100n);
    const recentStats = store.partition(recent, 0).stats();
    assert.ok(recentStats.records > 0, 'the more recently used topic keeps its newest records');
    assert.ok(recentStats.logStartOffset > 0n, 'the more recently used topic lost its oldest records');
    assert.equal(recentStats.lastOffset, 99n);

    // Eviction is counted against the topic it emptied (by the time the store shows it emptied),
    // and never against a bootstrap topic.
    const evicted = await metrics.getSingleMetricAsString('kgate_cache_evicted_bytes_total');
    assert.match(evicted, new RegExp(`topic="${lru}"`));
    assert.doesNotMatch(evicted, new RegExp(`topic="${boot}"`));

    // A reader attached to a topic whose head is evicted hears of it, so its cursor moves on.
    const reader = await binding.attach(recent);
    const changes: TopicChange[] = [];
    reader.onChange((change) => changes.push(change));
    await produce(recent, 60);
    await waitFor('reader told of eviction', () =>
      changes.some((c) => c.type === 'truncated' && c.logStartOffset > recentStats.logStartOffset),
    );
    await waitFor(`within budget again (${store.stats().bytes} bytes)`, () => store.stats().bytes <= BUDGET);
    assert.equal(store.partition(boot, 0).stats().records, bootValues.length);
    reader.release();
  });
});
