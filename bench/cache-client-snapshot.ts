// Snapshot of a compacted topic: the latest value of every key, through a cache_client stream
// against direct consumers reading the log from the earliest offset.
//   node bench/cache-client-snapshot.ts [--keys 100000] [--versions 10] [--size 100] [--rounds 3]
//        [--clients direct,rdkafka,cold,warm,compacted]
// An 8-partition topic with cleanup.policy=compact gets `versions` values of every key, version by
// version. Every reader builds the same map (key as a string -> value) from what it is given and
// stops when every partition has been read up to the end offsets taken after the fill; the map
// must then hold every key with its last version.
// - direct: a @platformatic/kafka Consumer (own group, mode earliest).
// - rdkafka: librdkafka's KafkaConsumer, assigned offset 0 of every partition, when built.
// - cold: kgate (cache_client -> cache_server -> client) started on an empty cache; the time runs
//   from Engine.start to the end of the snapshot, so it includes the broker-to-cache ingest.
// - warm: a new stream on the same kgate once the cache holds the whole log.
// - compacted: the same once the cache_server's maintenance has compacted the cache (it runs every
//   30 s by default), i.e. the cache holds one record per key.

import { Consumer, Producer } from '@platformatic/kafka';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { defaultRegistry } from '../src/bindings/index.ts';
import { CacheClientBinding, type CacheStream } from '../src/bindings/kafka/cache_client/index.ts';
import { CacheServerBinding } from '../src/bindings/kafka/cache_server/index.ts';
import { KafkaClient } from '../src/bindings/kafka/client/index.ts';
import { parseConfig } from '../src/config/index.ts';
import type { KafkaCluster } from '../src/embedded/kafka/index.ts';
import { Engine } from '../src/engine/engine.ts';
import {
  fmt,
  loadAverage,
  median,
  PARTITIONS,
  printEnvironment,
  printTable,
  withBroker,
} from './lib/common.ts';
import { connect, disconnect, loadRdKafka, type RdKafka, type RdMessage } from './lib/librdkafka.ts';

const { values: args } = parseArgs({
  options: {
    keys: { type: 'string', default: '100000' },
    versions: { type: 'string', default: '10' },
    size: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '3' },
    clients: { type: 'string', default: 'direct,rdkafka,cold,warm,compacted' },
  },
});
const KEYS = Number(args.keys);
const VERSIONS = Number(args.versions);
const SIZE = Math.max(16, Number(args.size));
const ROUNDS = Math.max(1, Number(args.rounds));
const clients = new Set(args.clients.split(','));
const TOPIC = 'snapshot';

interface Run {
  readonly ms: number;
  /** Messages handed to the reader, superseded versions included. */
  readonly delivered: number;
  readonly check: string;
}

interface Scenario {
  readonly name: string;
  readonly runs: Run[];
}

function keyOf(i: number): Buffer {
  return Buffer.from(`key-${String(i).padStart(7, '0')}`);
}

/** Version in bytes 0-3, key index in 4-7, so the final map can be checked against the fill. */
function valueOf(i: number, version: number): Buffer {
  const value = Buffer.alloc(SIZE, version & 0xff);
  value.writeUInt32BE(version, 0);
  value.writeUInt32BE(i, 4);
  return value;
}

async function fill(cluster: KafkaCluster): Promise<void> {
  const producer = new Producer({
    clientId: 'bench-snapshot-fill',
    bootstrapBrokers: cluster.bootstrap.split(','),
    acks: 1,
  });
  const batch = 2000;
  const total = KEYS * VERSIONS;
  let next = 0;
  try {
    // Several batches in flight keep the broker busy while the next one is encoded.
    const worker = async (): Promise<void> => {
      while (next < total) {
        const from = next;
        const to = Math.min(total, from + batch);
        next = to;
        const messages = [];
        for (let n = from; n < to; n++) {
          const i = n % KEYS;
          const version = Math.floor(n / KEYS) + 1;
          messages.push({
            topic: TOPIC,
            partition: i % PARTITIONS,
            key: keyOf(i),
            value: valueOf(i, version),
          });
        }
        await producer.send({ messages });
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
  } finally {
    await producer.close();
  }
}

/** The latest-value map every reader builds, and the per-partition end it reads up to. */
class Snapshot {
  readonly latest = new Map<string, Buffer>();
  delivered = 0;
  doneAt = 0;
  readonly #ends: readonly bigint[];
  readonly #reached: boolean[];
  #left: number;

  constructor(ends: readonly bigint[]) {
    this.#ends = ends;
    this.#reached = ends.map((end) => end === 0n);
    this.#left = this.#reached.filter((r) => !r).length;
  }

  get complete(): boolean {
    return this.#left === 0;
  }

  /** Takes one message; true once every partition has been read to its end. */
  take(
    partition: number,
    offset: bigint,
    key: Buffer | null | undefined,
    value: Buffer | null | undefined,
  ): boolean {
    this.delivered++;
    if (key !== null && key !== undefined) {
      if (value === null || value === undefined) this.latest.delete(key.toString('latin1'));
      else this.latest.set(key.toString('latin1'), value);
    }
    if (offset + 1n >= (this.#ends[partition] ?? 0n)) this.#reach(partition);
    return this.#left === 0;
  }

  /** For readers that skip records: a partition whose progress passed its end is complete. */
  reachProgress(progress: ReadonlyMap<number, bigint>): boolean {
    for (const [partition, next] of progress)
      if (next >= (this.#ends[partition] ?? 0n)) this.#reach(partition);
    return this.#left === 0;
  }

  #reach(partition: number): void {
    if (this.#reached[partition] === true) return;
    this.#reached[partition] = true;
    if (--this.#left === 0) this.doneAt = performance.now();
  }

  /** "ok" when every key is there with its last version, otherwise what is wrong. */
  check(): string {
    let stale = 0;
    for (let i = 0; i < KEYS; i++) {
      const value = this.latest.get(keyOf(i).toString('latin1'));
      if (value === undefined || value.readUInt32BE(0) !== VERSIONS || value.readUInt32BE(4) !== i) stale++;
    }
    if (stale === 0 && this.latest.size === KEYS) return 'ok';
    return `${fmt(this.latest.size)} keys, ${fmt(stale)} missing or stale`;
  }
}

async function direct(cluster: KafkaCluster, ends: readonly bigint[]): Promise<Run> {
  const snapshot = new Snapshot(ends);
  const started = performance.now();
  const consumer = new Consumer({
    clientId: 'bench-snapshot-direct',
    groupId: `bench-snapshot-${randomUUID()}`,
    bootstrapBrokers: cluster.bootstrap.split(','),
    maxWaitTime: 100,
    autocommit: false,
  });
  try {
    const stream = await consumer.consume({ topics: [TOPIC], mode: 'earliest' });
    for await (const m of stream) if (snapshot.take(m.partition, m.offset, m.key, m.value)) break;
    await stream.close().catch(() => undefined);
  } finally {
    await consumer.close(true).catch(() => undefined);
  }
  return { ms: snapshot.doneAt - started, delivered: snapshot.delivered, check: snapshot.check() };
}

interface RdKeyedMessage extends RdMessage {
  readonly key: Buffer | null | undefined;
}

async function rdkafka(
  rd: RdKafka,
  cluster: KafkaCluster,
  ends: readonly bigint[],
  signal: AbortSignal,
): Promise<Run> {
  const snapshot = new Snapshot(ends);
  const started = performance.now();
  const consumer = new rd.KafkaConsumer({
    'metadata.broker.list': cluster.bootstrap,
    'group.id': `bench-snapshot-${randomUUID()}`,
    'enable.auto.commit': false,
    'fetch.wait.max.ms': 100,
  });
  consumer.on('event.error', () => undefined);
  await connect(consumer, signal);
  try {
    consumer.setDefaultConsumeTimeout(100);
    // As the binding's KafkaJS layer does; otherwise consume(n) may wait once per message.
    consumer.setDefaultIsTimeoutOnlyForFirstMessage?.(true);
    consumer.assign(ends.map((_, partition) => ({ topic: TOPIC, partition, offset: 0 })));
    while (!snapshot.complete) {
      signal.throwIfAborted();
      const batch = await new Promise<RdKeyedMessage[]>((resolve, reject) =>
        consumer.consume(10_000, (error, got) =>
          error === null ? resolve(got as RdKeyedMessage[]) : reject(error),
        ),
      );
      for (const m of batch) if (snapshot.take(m.partition, BigInt(m.offset), m.key, m.value)) break;
    }
  } finally {
    await disconnect(consumer);
  }
  return { ms: snapshot.doneAt - started, delivered: snapshot.delivered, check: snapshot.check() };
}

async function readStream(stream: CacheStream, snapshot: Snapshot): Promise<void> {
  // Records the stream passes over (superseded versions) deliver nothing; a partition whose tail
  // is all passed over is complete when its progress says so.
  const watch = setInterval(() => {
    if (snapshot.reachProgress(stream.progress)) stream.close();
  }, 10);
  try {
    for await (const m of stream) if (snapshot.take(m.partition, m.offset, m.key, m.value)) break;
  } finally {
    clearInterval(watch);
    stream.close();
  }
}

function kgateEngine(cluster: KafkaCluster, stateDir: string): Engine {
  const yaml = [
    'name: bench-snapshot',
    'bindings:',
    '  north: { type: kafka, kind: cache_client, exit: cache }',
    '  cache: { type: kafka, kind: cache_server, exit: south }',
    `  south: { type: kafka, kind: client, options: { servers: ["${cluster.bootstrap}"] } }`,
  ].join('\n');
  return new Engine(parseConfig(yaml, 'bench-snapshot.yaml'), defaultRegistry(), {
    logger: pino({ level: 'silent' }),
    stateDir,
  });
}

function clientOf(engine: Engine): CacheClientBinding {
  const client = engine.binding('north');
  if (!(client instanceof CacheClientBinding)) throw new Error('north is not a cache_client');
  return client;
}

async function kgateSnapshot(engine: Engine, ends: readonly bigint[], started: number): Promise<Run> {
  const snapshot = new Snapshot(ends);
  const stream = await clientOf(engine).open(TOPIC);
  await readStream(stream, snapshot);
  return { ms: snapshot.doneAt - started, delivered: snapshot.delivered, check: snapshot.check() };
}

function cachedRecords(engine: Engine): number {
  const cache = engine.binding('cache');
  if (!(cache instanceof CacheServerBinding)) throw new Error('cache is not a cache_server');
  const store = cache.store;
  if (store === undefined) return NaN;
  let records = 0;
  for (let p = 0; p < PARTITIONS; p++) records += store.partition(TOPIC, p).stats().records;
  return records;
}

async function endOffsets(cluster: KafkaCluster): Promise<bigint[]> {
  const client = new KafkaClient({ servers: cluster.bootstrap.split(',') });
  await client.start(AbortSignal.timeout(30_000));
  try {
    return await Promise.all(
      Array.from({ length: PARTITIONS }, (_, p) => client.listOffsets(TOPIC, p, 'latest')),
    );
  } finally {
    await client.close();
  }
}

async function runAll(cluster: KafkaCluster, signal: AbortSignal): Promise<Scenario[]> {
  await cluster.createTopic(TOPIC, { partitions: PARTITIONS, configs: { 'cleanup.policy': 'compact' } });
  const fillStarted = performance.now();
  await fill(cluster);
  const ends = await endOffsets(cluster);
  const total = ends.reduce((a, b) => a + b, 0n);
  console.log(
    `filled ${TOPIC}: ${fmt(Number(total))} messages (${fmt(KEYS)} keys x ${VERSIONS} versions, ${SIZE} B) ` +
      `in ${fmt((performance.now() - fillStarted) / 1000, 1)} s; end offsets ${ends.join(',')}`,
  );
  if (total !== BigInt(KEYS * VERSIONS)) throw new Error(`topic holds ${total} messages`);
  const out: Scenario[] = [];
  const note = (s: Scenario): void => {
    const last = s.runs.at(-1);
    console.error(`${s.name}: ${fmt(last?.ms ?? NaN)} ms, ${last?.check ?? ''}, load ${loadAverage()}`);
  };
  const scenario = (name: string): Scenario => {
    const s = { name, runs: [] };
    out.push(s);
    return s;
  };

  if (clients.has('direct')) {
    const s = scenario('@platformatic/kafka Consumer from earliest');
    for (let r = 0; r < ROUNDS; r++) {
      s.runs.push(await direct(cluster, ends));
      note(s);
    }
  }
  const rd = loadRdKafka();
  if (clients.has('rdkafka') && typeof rd !== 'string') {
    const s = scenario(`librdkafka ${rd.librdkafkaVersion} from offset 0`);
    for (let r = 0; r < ROUNDS; r++) {
      s.runs.push(await rdkafka(rd, cluster, ends, signal));
      note(s);
    }
  } else if (clients.has('rdkafka')) console.log(`librdkafka peer not available: ${rd}`);

  if (!clients.has('cold') && !clients.has('warm') && !clients.has('compacted')) return out;
  const cold = clients.has('cold')
    ? scenario('kgate cache_client, cold (empty cache, ingest included)')
    : undefined;
  const coldRounds = cold === undefined ? 1 : ROUNDS;
  for (let r = 0; r < coldRounds; r++) {
    const stateDir = await mkdtemp(join(tmpdir(), 'kgate-bench-snapshot-'));
    const started = performance.now();
    const engine = kgateEngine(cluster, stateDir);
    try {
      await engine.start();
      const run = await kgateSnapshot(engine, ends, started);
      if (cold !== undefined) {
        cold.runs.push(run);
        note(cold);
      }
      if (r < coldRounds - 1) continue;
      if (clients.has('warm')) {
        const warm = scenario('kgate cache_client, warm cache (whole log cached)');
        const records = cachedRecords(engine);
        for (let w = 0; w < ROUNDS; w++) {
          warm.runs.push(await kgateSnapshot(engine, ends, performance.now()));
          note(warm);
        }
        console.log(`warm: the cache held ${fmt(records)} records`);
      }
      if (clients.has('compacted')) {
        const deadline = performance.now() + 120_000;
        while (cachedRecords(engine) > KEYS && performance.now() < deadline) {
          signal.throwIfAborted();
          await delay(500);
        }
        const records = cachedRecords(engine);
        const compacted = scenario('kgate cache_client, warm cache after its compaction');
        for (let w = 0; w < ROUNDS; w++) {
          compacted.runs.push(await kgateSnapshot(engine, ends, performance.now()));
          note(compacted);
        }
        console.log(`compacted: the cache held ${fmt(records)} records`);
      }
    } finally {
      await engine.stop(5_000);
      await rm(stateDir, { recursive: true, force: true });
    }
  }
  return out;
}

const command = `node bench/cache-client-snapshot.ts --keys ${KEYS} --versions ${VERSIONS} --size ${SIZE} --rounds ${ROUNDS} --clients ${args.clients}`;
printEnvironment(command);
const scenarios = await withBroker(20 * 60_000, runAll);
const baseline = scenarios.find((s) => s.name.startsWith('@platformatic'));
const baselineMs = baseline === undefined ? NaN : median(baseline.runs.map((r) => r.ms));
console.log(`\nmedian of ${ROUNDS} rounds; time is to the last partition read to its end offset`);
printTable(
  ['reader', 'ms (median)', 'all runs ms', 'messages delivered', 'latest map', 'vs @platformatic'],
  scenarios.map((s) => {
    const ms = median(s.runs.map((r) => r.ms));
    return [
      s.name,
      fmt(ms),
      s.runs.map((r) => fmt(r.ms)).join(' / '),
      fmt(median(s.runs.map((r) => r.delivered))),
      [...new Set(s.runs.map((r) => r.check))].join('; '),
      `${fmt(baselineMs / ms, 2)}x`,
    ];
  }),
);
console.log(`load average at end: ${loadAverage()}`);
