import { Admin } from '@platformatic/kafka';
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { PartitionStore } from '../../src/bindings/kafka/cache/index.ts';
import {
  CacheServerBinding,
  type CacheServerTuning,
  type TopicChange,
} from '../../src/bindings/kafka/cache_server/index.ts';
import {
  createKafkaClientBinding,
  type FetchOptions,
  type FetchResult,
  type KafkaApi,
  type KafkaClientBinding,
} from '../../src/bindings/kafka/client/index.ts';
import { ensureKafkaLibs, startKafka, type KafkaCluster } from '../../src/embedded/kafka/index.ts';
import type { Binding } from '../../src/engine/binding.ts';
import { kafkaExit } from '../support/kafka-exit.ts';

const TUNING: Partial<CacheServerTuning> = {
  lingerMs: 1_000,
  metadataRefreshMs: 500,
  configRefreshMs: 500,
  maintenanceIntervalMs: 300,
  retryInitialMs: 100,
  retryMaxMs: 1_000,
  durability: 'none',
};

const logger = pino({ level: process.env['KGATE_TEST_LOG'] ?? 'silent' });
let kafka: KafkaCluster;
let south: KafkaClientBinding;
let root: string;
const running = new Set<CacheServerBinding>();

before(async () => {
  kafka = await startKafka();
  root = await mkdtemp(join(tmpdir(), 'kgate-cache-server-it-'));
  south = createKafkaClientBinding({
    config: {
      name: 'south',
      type: 'kafka',
      kind: 'client',
      options: { servers: [kafka.bootstrap] },
      routes: [],
    },
    logger,
    metrics: new Registry(),
    stateDir: root,
    lookup: (name) => {
      throw new Error(`no binding ${name}`);
    },
  }) as KafkaClientBinding;
  await south.start(AbortSignal.timeout(30_000));
});

after(async () => {
  for (const server of running) await server.stop(AbortSignal.timeout(5_000));
  await south?.stop(AbortSignal.timeout(5_000));
  await kafka?.stop();
  if (root !== undefined) await rm(root, { recursive: true, force: true });
});

/** The client binding, with every fetch's start offset recorded. */
function spied(fetches: Array<{ partition: number; from: bigint }>): Binding & KafkaApi {
  return kafkaExit(south, {
    fetch: (
      topic: string,
      partition: number,
      from: bigint,
      options?: FetchOptions,
    ): AsyncIterableIterator<FetchResult> => {
      fetches.push({ partition, from });
      return south.fetch(topic, partition, from, options);
    },
  });
}

async function server(
  name: string,
  bootstrap: string[],
  options: { dir?: string; exit?: Binding & KafkaApi; metrics?: Registry } = {},
): Promise<CacheServerBinding> {
  const binding = new CacheServerBinding(
    {
      config: {
        name,
        type: 'kafka',
        kind: 'cache_server',
        options: { bootstrap },
        routes: [],
        exit: 'south',
      },
      logger,
      metrics: options.metrics ?? new Registry(),
      stateDir: options.dir ?? join(root, name),
      lookup: () => options.exit ?? south,
    },
    TUNING,
  );
  await binding.start(AbortSignal.timeout(10_000));
  running.add(binding);
  return binding;
}

async function stop(binding: CacheServerBinding): Promise<void> {
  running.delete(binding);
  await binding.stop(AbortSignal.timeout(5_000));
}

let topicCounter = 0;
async function topic(partitions: number, configs?: Record<string, string>): Promise<string> {
  const name = `cs${++topicCounter}-${Date.now()}`;
  await kafka.createTopic(name, { partitions, ...(configs === undefined ? {} : { configs }) });
  return name;
}

async function waitFor(what: string, condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(50);
  }
}

function partitionOf(binding: CacheServerBinding, t: string, p: number): PartitionStore {
  const store = binding.store;
  assert.ok(store !== undefined);
  return store.partition(t, p);
}

// A Java transactional producer: two committed records, then two aborted ones.
const TXN_PRODUCER = `
import java.util.Properties;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.serialization.StringSerializer;

public class Txn {
  public static void main(String[] args) throws Exception {
    Properties p = new Properties();
    p.put("bootstrap.servers", args[0]);
    p.put("transactional.id", "kgate-cache-test-" + System.nanoTime());
    p.put("key.serializer", StringSerializer.class.getName());
    p.put("value.serializer", StringSerializer.class.getName());
    try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
      producer.initTransactions();
      producer.beginTransaction();
      producer.send(new ProducerRecord<>(args[1], 0, "k", "committed-1"));
      producer.send(new ProducerRecord<>(args[1], 0, "k", "committed-2"));
      producer.commitTransaction();
      producer.beginTransaction();
      producer.send(new ProducerRecord<>(args[1], 0, "k", "aborted-1"));
      producer.send(new ProducerRecord<>(args[1], 0, "k", "aborted-2"));
      producer.flush();
      producer.abortTransaction();
    }
  }
}
`;

async function produceTransactions(t: string): Promise<void> {
  const libs = await ensureKafkaLibs();
  const dir = await mkdtemp(join(tmpdir(), 'kgate-cache-txn-'));
  try {
    const source = join(dir, 'Txn.java');
    await writeFile(source, TXN_PRODUCER);
    await new Promise<void>((resolve, reject) => {
      execFile('java', ['-cp', libs.classPath, source, kafka.bootstrap, t], (error, _out, err) =>
        error === null ? resolve() : reject(new Error(`${error.message}: ${err}`)),
      );
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function values(store: PartitionStore): string[] {
  return store.read(0n, { maxRecords: 10_000 }).records.map((r) => r.value?.toString() ?? '<null>');
}

describe('kafka cache_server against a real broker', () => {
  it('caches bootstrap topics byte for byte before any attach, then follows them live', async () => {
    const t = await topic(2);
    const binary = Buffer.from([0, 1, 2, 0xff, 0xfe, 10, 13]);
    await kafka.produce(t, [
      { partition: 0, key: 'k0', value: 'v0', headers: { h: 'x' } },
      { partition: 0, key: null, value: binary },
      { partition: 1, key: binary, value: null },
      { partition: 1, key: 'k1', value: 'v1' },
    ]);
    const cache = await server('bootstrap', [t]);
    const p0 = partitionOf(cache, t, 0);
    const p1 = partitionOf(cache, t, 1);
    await waitFor('bootstrap records', () => p0.stats().records === 2 && p1.stats().records === 2);
    const [a, b] = p0.read(0n).records;
    assert.equal(a?.key?.toString(), 'k0');
    assert.equal(a?.value?.toString(), 'v0');
    assert.deepEqual(
      a?.headers.map((h) => [h.name.toString(), h.value?.toString()]),
      [['h', 'x']],
    );
    assert.equal(b?.key, null);
    assert.deepEqual(b?.value, binary);
    const [c, d] = p1.read(0n).records;
    assert.deepEqual(c?.key, binary);
    assert.equal(c?.value, null);
    assert.equal(d?.offset, 1n);

    const attached = await cache.attach(t);
    assert.deepEqual(attached.partitions(), [0, 1]);
    assert.ok(attached.isReady(0) && attached.isReady(1));
    assert.equal(attached.compacted, false);
    assert.equal(attached.defaultOffset, 'historical');
    const changes: TopicChange[] = [];
    attached.onChange((change) => changes.push(change));
    await kafka.produce(t, [{ partition: 1, key: 'live', value: 'live-1' }]);
    await waitFor('appended event', () =>
      changes.some((c) => c.type === 'appended' && c.partition === 1 && c.nextOffset === 3n),
    );
    assert.equal(attached.store(1).read(2n).records[0]?.value?.toString(), 'live-1');

    // Produced through the cache_server, a keyed record goes where Java's partitioner puts it.
    const produced = await cache.produce(t, undefined, [{ key: 'key-1', value: 'routed' }]);
    assert.equal(produced.partition, 193331640 % 2); // Java: Utils.murmur2("key-1") = 193331640
    await waitFor('produced record cached', () => attached.store(0).nextOffset === 3n);
    assert.equal(attached.store(0).read(2n).records[0]?.value?.toString(), 'routed');
    attached.release();
    await stop(cache);
  });

  it('stores aborted transactions flagged, so read_committed readers can skip them', async () => {
    const t = await topic(1);
    const cache = await server('transactions', [t]);
    await produceTransactions(t);
    const p = partitionOf(cache, t, 0);
    await waitFor('both transactions', () => p.nextOffset === 6n);
    const records = p.read(0n).records;
    assert.deepEqual(
      records.map((r) => [r.offset, r.transactional, r.control, r.aborted]),
      [
        [0n, true, false, false],
        [1n, true, false, false],
        [2n, true, true, false],
        [3n, true, false, true],
        [4n, true, false, true],
        [5n, true, true, false],
      ],
    );
    assert.deepEqual(
      records.filter((r) => !r.control).map((r) => r.value?.toString()),
      ['committed-1', 'committed-2', 'aborted-1', 'aborted-2'],
    );
    // Aborted records never become a key's latest value.
    assert.equal(p.latestOffsetOf(Buffer.from('k')), 1n);
    assert.equal(p.lastStableOffset, 6n);
    await stop(cache);
  });

  it('resumes after a restart at the cached position without refetching', async () => {
    const t = await topic(1);
    await kafka.produce(
      t,
      Array.from({ length: 10 }, (_, i) => ({ value: `m${i}` })),
    );
    const dir = join(root, 'restart');
    const first = await server('restart-1', [t], { dir });
    await waitFor('first ten', () => partitionOf(first, t, 0).nextOffset === 10n);
    await stop(first);
    await kafka.produce(
      t,
      Array.from({ length: 5 }, (_, i) => ({ value: `m${10 + i}` })),
    );
    const fetches: Array<{ partition: number; from: bigint }> = [];
    const second = await server('restart-2', [t], { dir, exit: spied(fetches) });
    const p = partitionOf(second, t, 0);
    await waitFor('all fifteen', () => p.nextOffset === 15n);
    assert.equal(fetches[0]?.from, 10n);
    const records = p.read(0n, { maxRecords: 100 }).records;
    assert.deepEqual(
      records.map((r) => r.offset),
      Array.from({ length: 15 }, (_, i) => BigInt(i)),
    );
    assert.deepEqual(
      records.map((r) => r.value?.toString()),
      Array.from({ length: 15 }, (_, i) => `m${i}`),
    );
    await stop(second);
  });

  it('compacts a compacted topic on its own timer, keeping the latest value per key', async () => {
    const t = await topic(1, { 'cleanup.policy': 'compact', 'min.compaction.lag.ms': '0' });
    await kafka.produce(t, [
      { key: 'a', value: 'a1' },
      { key: 'b', value: 'b1' },
      { key: 'a', value: 'a2' },
      { key: 'a', value: 'a3' },
      { key: 'b', value: 'b2' },
      { key: 'c', value: 'c1' },
    ]);
    const metrics = new Registry();
    const cache = await server('compact', [t], { metrics });
    const p = partitionOf(cache, t, 0);
    await waitFor('compaction', () => p.nextOffset === 6n && p.stats().records === 3);
    assert.deepEqual(values(p), ['a3', 'b2', 'c1']);
    assert.equal(p.latestOffsetOf(Buffer.from('a')), 3n);
    const attached = await cache.attach(t);
    assert.equal(attached.compacted, true);
    attached.release();
    const text = await metrics.metrics();
    assert.match(
      text,
      new RegExp(`kgate_cache_compacted_records_total\\{binding="compact",topic="${t}",partition="0"\\} 3`),
    );
    assert.match(
      text,
      new RegExp(`kgate_cache_partition_messages\\{binding="compact",topic="${t}",partition="0"\\} 3`),
    );
    await stop(cache);
  });

  it('expires by retention.ms with nobody attached', async () => {
    const t = await topic(1, { 'retention.ms': '3000' });
    const cache = await server('retention', [t]);
    await kafka.produce(t, [{ value: 'old-1' }, { value: 'old-2' }, { value: 'old-3' }]);
    const p = partitionOf(cache, t, 0);
    await waitFor('cached', () => p.nextOffset === 3n);
    assert.ok(p.stats().records > 0);
    await waitFor('expired', () => p.stats().records === 0, 15_000);
    assert.equal(p.logStartOffset, 3n);
    await stop(cache);
  });

  it('follows the broker log start, live and across a restart', async () => {
    const t = await topic(1);
    await kafka.produce(
      t,
      Array.from({ length: 5 }, (_, i) => ({ value: `r${i}` })),
    );
    const dir = join(root, 'log-start');
    const first = await server('log-start-1', [t], { dir });
    const p = partitionOf(first, t, 0);
    await waitFor('cached', () => p.nextOffset === 5n);
    const attached = await first.attach(t);
    const changes: TopicChange[] = [];
    attached.onChange((c) => changes.push(c));
    await kafka.deleteRecords(t, 0, 3n);
    await kafka.produce(t, [{ value: 'r5' }]);
    await waitFor('truncated live', () =>
      changes.some((c) => c.type === 'truncated' && c.logStartOffset === 3n),
    );
    await waitFor('sixth', () => p.nextOffset === 6n);
    assert.deepEqual(values(p), ['r3', 'r4', 'r5']);
    attached.release();
    await stop(first);

    // Offline, the broker's log start passes the cache's end: OFFSET_OUT_OF_RANGE on resume.
    await kafka.produce(
      t,
      Array.from({ length: 4 }, (_, i) => ({ value: `r${6 + i}` })),
    );
    await kafka.deleteRecords(t, 0, 8n);
    const second = await server('log-start-2', [t], { dir });
    const q = partitionOf(second, t, 0);
    await waitFor('resumed past the gap', () => q.nextOffset === 10n);
    assert.equal(q.logStartOffset, 8n);
    assert.deepEqual(values(q), ['r8', 'r9']);
    await stop(second);
  });

  it('resets the cache of a recreated topic', async () => {
    const t = await topic(1);
    await kafka.produce(
      t,
      Array.from({ length: 5 }, (_, i) => ({ value: `old${i}` })),
    );
    const cache = await server('recreate', [t]);
    const p = partitionOf(cache, t, 0);
    await waitFor('cached', () => p.nextOffset === 5n);
    const oldId = p.topicId;
    const attached = await cache.attach(t);
    const changes: TopicChange[] = [];
    attached.onChange((c) => changes.push(c));
    await kafka.deleteTopic(t);
    await waitFor('deletion seen', () => changes.some((c) => c.type === 'error'));
    attached.release();
    for (let i = 0; ; i++) {
      try {
        await kafka.createTopic(t, { partitions: 1 });
        break;
      } catch (error) {
        if (i > 50) throw error;
        await delay(200);
      }
    }
    await kafka.produce(t, [{ value: 'new0' }, { value: 'new1' }]);
    await waitFor('refetched', () => p.topicId !== oldId && p.nextOffset === 2n);
    assert.deepEqual(values(p), ['new0', 'new1']);
    await stop(cache);
  });

  it('rejects attaching to a missing topic, and picks up a bootstrap topic created later', async () => {
    const later = `cs-later-${Date.now()}`;
    const cache = await server('missing', [later]);
    await assert.rejects(cache.attach(`cs-missing-${Date.now()}`), /topic "cs-missing-\d+" does not exist/);
    await delay(300);
    await kafka.createTopic(later, { partitions: 1 });
    await kafka.produce(later, [{ value: 'finally' }]);
    const p = partitionOf(cache, later, 0);
    await waitFor('late bootstrap topic', () => p.nextOffset === 1n);
    assert.deepEqual(values(p), ['finally']);
    await stop(cache);
  });

  it('follows an attached topic, stops after the linger, and picks up added partitions', async () => {
    const t = await topic(1);
    const cache = await server('attach', []);
    const attached = await cache.attach(t);
    const changes: TopicChange[] = [];
    attached.onChange((c) => changes.push(c));
    const admin = new Admin({ clientId: 'kgate-test', bootstrapBrokers: [kafka.bootstrap] });
    try {
      await admin.createPartitions({ topics: [{ name: t, count: 3 }] });
    } finally {
      await admin.close();
    }
    await waitFor('partitions change', () =>
      changes.some((c) => c.type === 'partitions' && c.partitions.length === 3),
    );
    await kafka.produce(t, [{ partition: 2, value: 'in-new-partition' }]);
    await waitFor('new partition fed', () => attached.store(2).nextOffset === 1n);
    assert.deepEqual(attached.partitions(), [0, 1, 2]);
    assert.deepEqual(cache.followedTopics(), [t]);
    attached.release();
    await waitFor('linger over', () => cache.followedTopics().length === 0, 5_000);
    await stop(cache);
  });
});
