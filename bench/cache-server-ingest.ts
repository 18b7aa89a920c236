// Broker-to-cache ingest of the cache_server against a consumer that only reads, then a warm
// restart of a full cache.
//   node bench/cache-server-ingest.ts [--messages N] [--tail N] [--durability sync|overlapped|none]
// --messages is the 100 B case's count (default 1,000,000, also the warm-restart cache); the 1 KB
// case uses a quarter of it. Both read the same topic of 8 partitions, filled before timing.

import { Consumer } from '@platformatic/kafka';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { CacheServerBinding } from '../src/bindings/kafka/cache_server/index.ts';
import { KafkaClient, type FetchResult, type KafkaApi } from '../src/bindings/kafka/client/index.ts';
import { kafkaVersion, startKafka, type KafkaCluster } from '../src/embedded/kafka/index.ts';
import type { Binding } from '../src/engine/binding.ts';
import { kafkaExit } from '../test/support/kafka-exit.ts';

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '1000000' },
    tail: { type: 'string', default: '10000' },
    durability: { type: 'string', default: 'sync' },
  },
});
const MESSAGES = Number(args.messages);
const TAIL = Number(args.tail);
const durability = args.durability as 'sync' | 'overlapped' | 'none';
const PARTITIONS = 8;
const logger = pino({ level: 'silent' });

const fmt = (n: number, digits = 0): string =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const load = (): string =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

interface Case {
  readonly name: string;
  readonly valueSize: number;
  readonly messages: number;
}

interface Run {
  readonly ms: number;
  readonly messages: number;
  readonly bytes: number;
}

/** Fills every partition evenly; values are random so compression or dedup cannot help anyone. */
async function fill(client: KafkaClient, topic: string, c: Case, count: number): Promise<void> {
  const perCall = Math.max(1, Math.floor((256 * 1024) / c.valueSize));
  const pool = randomBytes(c.valueSize * 64);
  let sent = 0;
  const worker = async (partition: number): Promise<void> => {
    for (let i = partition; i * perCall < count; i += PARTITIONS) {
      const n = Math.min(perCall, count - i * perCall);
      const records = Array.from({ length: n }, (_, j) => {
        const at = ((i + j) * 131) % 63;
        return { key: null, value: pool.subarray(at * c.valueSize, (at + 1) * c.valueSize) };
      });
      await client.produce(topic, partition, records, { acks: 1 });
      sent += n;
    }
  };
  await Promise.all(Array.from({ length: PARTITIONS }, (_, p) => worker(p)));
  if (sent !== count) throw new Error(`filled ${sent} of ${count}`);
}

async function consumerRead(bootstrap: string, topic: string, total: number): Promise<Run> {
  const started = performance.now();
  const consumer = new Consumer({
    clientId: 'bench-consumer',
    groupId: `bench-${randomUUID()}`,
    bootstrapBrokers: [bootstrap],
    maxWaitTime: 100,
    autocommit: false,
  });
  let messages = 0;
  let bytes = 0;
  try {
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest' });
    for await (const message of stream) {
      messages++;
      bytes += (message.value as Buffer | undefined)?.length ?? 0;
      if (messages >= total) break;
    }
    await stream.close().catch(() => undefined);
  } finally {
    await consumer.close(true).catch(() => undefined);
  }
  return { ms: performance.now() - started, messages, bytes };
}

/** The client as the cache_server's exit, counting what its fetches bring back. */
function counting(
  client: KafkaClient,
  fetched: { records: number; bytes: number; from: bigint[] },
): Binding & KafkaApi {
  return kafkaExit(client, {
    fetch: (topic, partition, from, options) => {
      fetched.from[partition] = from;
      const inner = client.fetch(topic, partition, from, options);
      const outer = (async function* (): AsyncGenerator<FetchResult> {
        for await (const result of inner) {
          for (const batch of result.batches)
            for (const record of batch.records) {
              fetched.records++;
              fetched.bytes += (record.key?.length ?? 0) + (record.value?.length ?? 0);
            }
          yield result;
        }
      })();
      return outer;
    },
  });
}

function cacheServer(dir: string, topic: string, exit: Binding & KafkaApi): CacheServerBinding {
  return new CacheServerBinding(
    {
      config: {
        name: 'cache',
        type: 'kafka',
        kind: 'cache_server',
        options: { bootstrap: [topic] },
        routes: [],
        exit: 'south',
      },
      logger,
      metrics: new Registry(),
      stateDir: dir,
      lookup: () => exit,
    },
    { durability, maintenanceIntervalMs: 3_600_000 },
  );
}

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out: ${what}`);
    await delay(5);
  }
}

function caughtUp(cache: CacheServerBinding, topic: string, ends: readonly bigint[]): boolean {
  const store = cache.store;
  return store !== undefined && ends.every((end, p) => store.partition(topic, p).nextOffset >= end);
}

async function cacheIngest(
  client: KafkaClient,
  dir: string,
  topic: string,
  ends: readonly bigint[],
  c: Case,
): Promise<Run> {
  const fetched = { records: 0, bytes: 0, from: [] as bigint[] };
  const started = performance.now();
  const cache = cacheServer(dir, topic, counting(client, fetched));
  await cache.start(AbortSignal.timeout(30_000));
  await until(() => caughtUp(cache, topic, ends), 600_000, `cache ingest of ${c.name}`);
  const ms = performance.now() - started;
  const commits = cache.ingestCommits;
  await cache.stop(AbortSignal.timeout(30_000));
  const total = Number(ends.reduce((a, b) => a + b, 0n));
  if (commits !== undefined)
    console.log(
      `${c.name}: ${fmt(commits.appends)} fetch results appended in ${fmt(commits.commits)} commits`,
    );
  return { ms, messages: total, bytes: total * c.valueSize };
}

function row(name: string, run: Run, baseline?: Run): string {
  const rate = run.messages / (run.ms / 1000);
  const mb = run.bytes / 2 ** 20 / (run.ms / 1000);
  const ratio = baseline === undefined ? '' : `${fmt(baseline.ms / run.ms, 2)}x`;
  return `| ${name} | ${fmt(run.messages)} | ${fmt(run.ms / 1000, 2)} | ${fmt(rate)} | ${fmt(mb, 1)} | ${ratio} |`;
}

async function main(): Promise<void> {
  console.log(`command: node bench/cache-server-ingest.ts ${process.argv.slice(2).join(' ')}`.trimEnd());
  console.log(
    `node ${process.version}, kafka ${kafkaVersion()}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ` +
      `${fmt(totalmem() / 2 ** 30, 1)} GiB, durability ${durability}, ${new Date().toISOString()}`,
  );
  console.log(`load average at start: ${load()}`);
  const kafka: KafkaCluster = await startKafka();
  const client = new KafkaClient({ servers: [kafka.bootstrap] });
  const root = mkdtempSync(join(tmpdir(), 'kgate-bench-cache-server-'));
  try {
    await client.start(AbortSignal.timeout(30_000));
    const cases: Case[] = [
      { name: '100 B', valueSize: 100, messages: MESSAGES },
      { name: '1 KB', valueSize: 1024, messages: Math.ceil(MESSAGES / 4) },
    ];
    const rows: string[] = [];
    let warm: { topic: string; dir: string; c: Case } | undefined;
    for (const c of cases) {
      const topic = `ingest-${c.valueSize}`;
      await kafka.createTopic(topic, { partitions: PARTITIONS });
      const fillStart = performance.now();
      await fill(client, topic, c, c.messages);
      console.log(
        `filled ${topic}: ${fmt(c.messages)} messages in ${fmt((performance.now() - fillStart) / 1000, 1)} s`,
      );
      const ends = await Promise.all(
        Array.from({ length: PARTITIONS }, (_, p) => client.listOffsets(topic, p, 'latest')),
      );
      const consumer = await consumerRead(kafka.bootstrap, topic, c.messages);
      const dir = join(root, topic);
      const cache = await cacheIngest(client, dir, topic, ends, c);
      rows.push(row(`${c.name}: @platformatic/kafka Consumer (read only)`, consumer));
      rows.push(row(`${c.name}: cache_server ingest (${durability})`, cache, consumer));
      if (c.valueSize === 100) warm = { topic, dir, c };
      else rmSync(dir, { recursive: true, force: true });
    }
    console.log();
    console.log('| case | messages | s | msgs/s | MB/s | vs consumer |');
    console.log('|:--|--:|--:|--:|--:|--:|');
    for (const r of rows) console.log(r);

    if (warm !== undefined) {
      const { topic, dir, c } = warm;
      await fill(client, topic, c, TAIL);
      const ends = await Promise.all(
        Array.from({ length: PARTITIONS }, (_, p) => client.listOffsets(topic, p, 'latest')),
      );
      const fetched = { records: 0, bytes: 0, from: [] as bigint[] };
      const started = performance.now();
      const cache = cacheServer(dir, topic, counting(client, fetched));
      await cache.start(AbortSignal.timeout(30_000));
      const startMs = performance.now() - started;
      const attached = await cache.attach(topic);
      const first = attached.store(0).read(0n, { maxRecords: 1 }).records.length;
      const attachMs = performance.now() - started;
      await until(() => attached.partitions().every((p) => attached.isReady(p)), 30_000, 'ready');
      const readyMs = performance.now() - started;
      await until(() => caughtUp(cache, topic, ends), 60_000, 'tail');
      const tailMs = performance.now() - started;
      const cached = cache.store?.stats();
      attached.release();
      await cache.stop(AbortSignal.timeout(30_000));
      const resumedFrom = fetched.from.reduce((a, b) => a + b, 0n);
      console.log();
      console.log(
        `warm restart, ${fmt(cached?.records ?? 0)} cached messages (${fmt((cached?.fileBytes ?? 0) / 2 ** 20)} MiB file), ` +
          `${fmt(TAIL)} produced while stopped:`,
      );
      console.log('| step | ms |');
      console.log('|:--|--:|');
      console.log(`| start() resolved | ${fmt(startMs)} |`);
      console.log(`| attach() resolved, first record read (${first}) | ${fmt(attachMs)} |`);
      console.log(`| every partition ready (a cache_client serves it) | ${fmt(readyMs)} |`);
      console.log(`| tail cached | ${fmt(tailMs)} |`);
      console.log(
        `fetched at restart: ${fmt(fetched.records)} records, ${fmt(fetched.bytes)} payload bytes ` +
          `(tail: ${fmt(TAIL)} records, ${fmt(TAIL * c.valueSize)} bytes); fetches began at offsets summing to ` +
          `${fmt(Number(resumedFrom))} of ${fmt(Number(ends.reduce((a, b) => a + b, 0n)))}`,
      );
    }
    console.log(`load average at end: ${load()}`);
  } finally {
    await client.close();
    await kafka.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
