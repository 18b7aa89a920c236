// Point 7 of docs/reliability.md: after the cache's byte budget (--cache-max-bytes) evicts the
// oldest records of a topic that Kafka still holds, GET never answers as if the cache were the
// topic. A real broker holds 600 keys; the cache keeps what fits the budget. The merged list is
// answered 203 with Kgate-Partial naming where each partition's cache starts, and every key kcat
// reads from the topic is either answered 200 with its value or, when its record was evicted, 507
// (never 404). The mark survives a restart of kgate, and goes once Kafka deletes the evicted
// records itself (deleteRecords): then the list is whole again and an evicted key is 404.
import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { defaultRegistry } from '../../src/bindings/index.ts';
import { CacheServerBinding, type CacheServerTuning } from '../../src/bindings/kafka/cache_server/index.ts';
import type { TcpServerBinding } from '../../src/bindings/tcp/server.ts';
import { parseConfig } from '../../src/config/index.ts';
import { startKafka, type KafkaCluster } from '../../src/embedded/kafka/index.ts';
import { Engine } from '../../src/engine/engine.ts';
import { kcatPartition, type KcatRecord } from '../support/kcat-topic.ts';
import { until } from '../support/until.ts';

const PARTITIONS = 2;
const KEYS = 600;
const VALUE_BYTES = 1024;
/** About a third of what the topic holds: eviction takes the oldest two thirds. */
const BUDGET = 256 * 1024;
const TUNING: Partial<CacheServerTuning> = {
  metadataRefreshMs: 500,
  configRefreshMs: 500,
  maintenanceIntervalMs: 200,
  retryInitialMs: 100,
  retryMaxMs: 1_000,
  durability: 'none',
};

let kafka: KafkaCluster;
let stateDir: string;
let engine: Engine | undefined;
let port = 0;
const topic = `evicted-${Date.now()}`;

function keyOf(i: number): string {
  return `k${String(i).padStart(3, '0')}`;
}

function valueOf(i: number): string {
  const head = JSON.stringify({ key: keyOf(i), pad: '' }).slice(0, -2);
  return `${head}${'x'.repeat(VALUE_BYTES - head.length - 2)}"}`;
}

async function startEngine(): Promise<void> {
  const yaml = `
name: eviction-fault
bindings:
  tcp: { type: tcp, kind: server, options: { host: 127.0.0.1, port: 0 }, exit: http }
  http: { type: http, kind: server, exit: rest }
  rest:
    type: http-kafka
    kind: proxy
    routes:
      - when: [{ method: GET, path: /items }]
        exit: north
        with: { capability: fetch, topic: ${topic}, merge: { content-type: application/json } }
      - when: [{ method: GET, path: "/items/{id}" }]
        exit: north
        with: { capability: fetch, topic: ${topic}, filters: [{ key: "\${params.id}" }] }
  north: { type: kafka, kind: cache_client, exit: cache }
  cache: { type: kafka, kind: cache_server, exit: south }
  south: { type: kafka, kind: client, options: { servers: ["${kafka.bootstrap}"] } }
`;
  // The maintenance timer, which evicts, runs every 200 ms here rather than every 30 s.
  const registry = defaultRegistry().map((type, kind, factory) =>
    type === 'kafka' && kind === 'cache_server' ? (ctx) => new CacheServerBinding(ctx, TUNING) : factory,
  );
  engine = new Engine(parseConfig(yaml, 'eviction-fault.yaml'), registry, {
    logger: pino({ level: process.env['KGATE_TEST_LOG'] ?? 'silent' }),
    stateDir,
    cacheMaxBytes: BUDGET,
  });
  await engine.start();
  const tcp = engine.binding('tcp') as TcpServerBinding | undefined;
  port = tcp?.ports[0] ?? 0;
  assert.ok(port > 0, 'tcp server listens');
}

before(async () => {
  kafka = await startKafka();
  stateDir = await mkdtemp(join(tmpdir(), 'kgate-fault-eviction-'));
  // compact,delete: keyed reads go through the key index, and Kafka may still delete records.
  await kafka.createTopic(topic, {
    partitions: PARTITIONS,
    configs: { 'cleanup.policy': 'compact,delete', 'retention.ms': '-1' },
  });
  const messages = Array.from({ length: KEYS }, (_, i) => ({
    key: keyOf(i),
    value: valueOf(i),
    partition: i % PARTITIONS,
  }));
  await kafka.produce(topic, messages);
  await startEngine();
});

after(async () => {
  await engine?.stop(5_000);
  await kafka?.stop();
  if (stateDir !== undefined) await rm(stateDir, { recursive: true, force: true });
});

interface Answer {
  readonly status: number;
  readonly partial: string | null;
  readonly text: string;
}

async function get(path: string): Promise<Answer> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, partial: res.headers.get('kgate-partial'), text: await res.text() };
}

/** GETs `path` until `done` holds for the answer, for at most `timeoutMs`. */
async function getUntil(path: string, done: (a: Answer) => boolean, timeoutMs = 30_000): Promise<Answer> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await get(path);
    if (done(answer)) return answer;
    if (Date.now() > deadline)
      throw new Error(`${path}: still ${answer.status} ${answer.partial ?? ''} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** `0:1200, 1:977` as a map of partition to the offset the cache holds it from. */
function parsePartial(header: string | null): Map<number, bigint> {
  const heads = new Map<number, bigint>();
  for (const item of (header ?? '').split(',')) {
    const [partition, from] = item.trim().split(':');
    if (partition === undefined || from === undefined || partition === '') continue;
    heads.set(Number(partition), BigInt(from));
  }
  return heads;
}

async function topicRecords(): Promise<KcatRecord[][]> {
  const out: KcatRecord[][] = [];
  for (let p = 0; p < PARTITIONS; p++) out.push(await kcatPartition(kafka.bootstrap, topic, p));
  return out;
}

interface Counts {
  /** Keys Kafka holds that an answer left out without saying the answer was partial. */
  lied: number;
  /** 200 with another value than Kafka's, or 404 for a key Kafka holds. */
  wrong: number;
  found: number;
  unknown: number;
}

/** Every key Kafka holds, GET one by one: 200 with Kafka's value, or 507 for an evicted record. */
async function checkKeys(held: readonly KcatRecord[][], heads: ReadonlyMap<number, bigint>): Promise<Counts> {
  const counts: Counts = { lied: 0, wrong: 0, found: 0, unknown: 0 };
  for (let p = 0; p < PARTITIONS; p++) {
    for (const r of held[p] ?? []) {
      const a = await get(`/items/${r.key}`);
      const evicted = r.offset < (heads.get(p) ?? 0n);
      if (a.status === 200 && a.text === r.value && !evicted) counts.found++;
      else if (a.status === 507 && evicted && a.partial !== null) counts.unknown++;
      else if (a.status === 404) counts.lied++;
      else counts.wrong++;
    }
  }
  return counts;
}

describe('eviction: GET says when the cache misses records Kafka holds', () => {
  it('answers a partial list 203, an evicted key 507, across a restart, until Kafka drops them too', async (t) => {
    const began = Date.now();
    // The first GET attaches the topic (it is no bootstrap topic, so the budget may evict it); the
    // maintenance timer evicts once its records are fetched. Its round is awaited to its end, so
    // that what is read below does not change under the checks.
    const first = await get('/items');
    const cache = engine?.binding('cache') as CacheServerBinding | undefined;
    const store = cache?.store;
    assert.ok(store !== undefined);
    await until(
      'the budget evicted from every partition',
      () =>
        store.stats().bytes <= BUDGET &&
        Array.from({ length: PARTITIONS }, (_, p) => store.partition(topic, p)).every((p) => p.evicted),
      30_000,
    );
    const evictedMs = Date.now() - began;
    const list = await get('/items');
    const heads = parsePartial(list.partial);
    const held = await topicRecords();
    const listed = new Set((JSON.parse(list.text) as { key: string }[]).map((v) => v.key));
    let missing = 0;
    let lied = 0;
    held.forEach((records, p) => {
      for (const r of records) {
        if (listed.has(r.key)) continue;
        missing++;
        // Left out of the list: only where the header says the cache starts past it.
        if (r.offset >= (heads.get(p) ?? 0n)) lied++;
      }
    });
    const keys = await checkKeys(held, heads);
    // Before the checks, so that a run that fails them still shows what it saw.
    const figures = {
      keys: KEYS,
      valueBytes: VALUE_BYTES,
      budget: BUDGET,
      firstStatus: first.status,
      evictedMs,
      listStatus: list.status,
      kgatePartial: list.partial,
      listed: listed.size,
      missing,
      lied,
      keyGets: keys,
    };
    t.diagnostic(JSON.stringify(figures));
    assert.equal(
      held.reduce((n, r) => n + r.length, 0),
      KEYS,
      'Kafka still holds every key',
    );
    assert.ok(missing > 0, 'the budget evicted keys Kafka holds');
    assert.equal(list.status, 203, `a list missing evicted keys is 203, not ${list.status}`);
    assert.ok(heads.size > 0, `Kgate-Partial names the evicted partitions: ${list.partial}`);
    assert.equal(lied, 0, 'no key is left out of the list without the header covering it');
    assert.deepEqual(
      { lied: keys.lied, wrong: keys.wrong, answered: keys.found + keys.unknown },
      { lied: 0, wrong: 0, answered: KEYS },
    );
    assert.equal(keys.unknown, missing, 'every key left out of the list is 507 on its own');

    // The mark is stored with the cache: a restarted kgate knows its cache is partial.
    await engine?.stop(5_000);
    const restartBegan = Date.now();
    await startEngine();
    const again = await get('/items');
    const restartMs = Date.now() - restartBegan;
    assert.equal(again.status, 203, 'still partial after a restart');
    assert.ok(again.partial !== null);

    // Kafka deletes what the cache evicted: the cache is whole again.
    const heldAfter = parsePartial(again.partial);
    for (const [p, from] of heldAfter) await kafka.deleteRecords(topic, p, from);
    const deleted = Date.now();
    const whole = await getUntil('/items', (a) => a.status === 200);
    const wholeMs = Date.now() - deleted;
    assert.equal(whole.partial, null);
    const firstEvicted = held.flat().find((r) => !listed.has(r.key));
    assert.ok(firstEvicted !== undefined);
    const gone = await get(`/items/${firstEvicted.key}`);
    assert.equal(gone.status, 404, 'a key Kafka no longer holds is 404 again');

    t.diagnostic(JSON.stringify({ restartMs, wholeAfterDeleteRecordsMs: wholeMs }));
  });
});
