// Fan-out of one 8-partition topic: N cache_client streams in this process (N = 10, 100, 1000 by
// default) against 100 direct consumers, each its own group.
//   node bench/cache-client-fanout.ts [--mode live|drain] [--streams 10,100,1000] [--direct 100] [--size 100]
//   live:  [--rate 500] [--seconds 10]
//   drain: [--messages 100000] [--max-seconds 60] [--peers platformatic,rdkafka] [--batch 0]
// live: a @platformatic/kafka producer sends `rate` messages/s for `seconds`, each stamped with its
// send time; every consumer is live and records produce-to-delivery latency.
// drain: the topic is filled with `messages` first; then every consumer reads all of it from the
// earliest offset as fast as it can, so delivered msgs/s is the consumers' own throughput, not the
// producer's rate. kgate's cache has ingested the topic before the clock starts (its ingest is
// reported apart); with --batch N its streams are read with nextBatch(N) instead of for await. Direct consumers are @platformatic/kafka Consumers and, when bench/ has
// @confluentinc/kafka-javascript built, librdkafka KafkaConsumers. Every consumer does the same work
// per message: count it, add its value's length, compare its own count with the total.
// Broker fetch requests are counted from kgate_kafka_client_requests_total for kgate, from
// @platformatic/kafka's consumer:fetches diagnostics channel and from librdkafka's statistics
// (brokers.*.req.Fetch) for the direct consumers.

import { Consumer, Producer } from '@platformatic/kafka';
import { randomUUID } from 'node:crypto';
import { tracingChannel } from 'node:diagnostics_channel';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import type { Counter } from 'prom-client';
import { defaultRegistry } from '../src/bindings/index.ts';
import { CacheClientBinding, type CacheStream } from '../src/bindings/kafka/cache_client/index.ts';
import { parseConfig } from '../src/config/index.ts';
import type { KafkaCluster } from '../src/embedded/kafka/index.ts';
import { Engine } from '../src/engine/engine.ts';
import { runDrain } from './lib/fanout-drain.ts';
import {
  fmt,
  loadAverage,
  PARTITIONS,
  percentile,
  printEnvironment,
  printTable,
  withBroker,
} from './lib/common.ts';

const { values: args } = parseArgs({
  options: {
    rate: { type: 'string', default: '500' },
    seconds: { type: 'string', default: '10' },
    size: { type: 'string', default: '100' },
    streams: { type: 'string', default: '10,100,1000' },
    direct: { type: 'string', default: '100' },
    mode: { type: 'string', default: 'live' },
    messages: { type: 'string', default: '100000' },
    'max-seconds': { type: 'string', default: '60' },
    peers: { type: 'string', default: 'platformatic,rdkafka' },
    batch: { type: 'string', default: '0' },
  },
});
const mode = args.mode;
if (mode !== 'live' && mode !== 'drain') throw new Error(`--mode ${mode}: expected live or drain`);
const rate = Number(args.rate);
const seconds = Number(args.seconds);
const size = Math.max(16, Number(args.size));
const streamCounts = args.streams.split(',').map(Number);
const directCount = Number(args.direct);
const produced = rate * seconds;

interface Result {
  readonly name: string;
  readonly consumers: number;
  readonly delivered: number;
  readonly elapsedMs: number;
  readonly fetches: number;
  readonly latencies: Float64Array;
}

/** Collects latencies of every delivery, and resolves when all consumers have all messages. */
class Sink {
  readonly latencies: Float64Array;
  delivered = 0;
  last = 0;
  readonly #expected: number;
  #done: (() => void) | undefined;
  readonly done: Promise<void>;

  constructor(consumers: number) {
    this.#expected = consumers * produced;
    this.latencies = new Float64Array(this.#expected);
    this.done = new Promise((resolve) => (this.#done = resolve));
  }

  take(value: Buffer | null | undefined): void {
    if (value === null || value === undefined || value.length < 8) return;
    const now = performance.timeOrigin + performance.now();
    if (this.delivered < this.latencies.length) this.latencies[this.delivered] = now - value.readDoubleBE(0);
    this.delivered++;
    this.last = now;
    if (this.delivered >= this.#expected) this.#done?.();
  }
}

async function produce(cluster: KafkaCluster, topic: string): Promise<number> {
  const producer = new Producer({
    clientId: 'bench-fanout-producer',
    bootstrapBrokers: cluster.bootstrap.split(','),
    acks: 1,
  });
  const tick = 10;
  const perTick = Math.max(1, Math.round((rate * tick) / 1000));
  const started = performance.timeOrigin + performance.now();
  let sent = 0;
  try {
    while (sent < produced) {
      const n = Math.min(perTick, produced - sent);
      const now = performance.timeOrigin + performance.now();
      const messages = Array.from({ length: n }, (_, i) => {
        const value = Buffer.alloc(size);
        value.writeDoubleBE(now, 0);
        return {
          topic,
          partition: (sent + i) % PARTITIONS,
          key: Buffer.from(`k${(sent + i) % 1000}`),
          value,
        };
      });
      await producer.send({ messages });
      sent += n;
      const due = started + (sent / perTick) * tick - (performance.timeOrigin + performance.now());
      if (due > 0) await new Promise((resolve) => setTimeout(resolve, due));
    }
  } finally {
    await producer.close();
  }
  return started;
}

async function finish(sink: Sink, signal: AbortSignal): Promise<void> {
  // Slow scenarios end with what arrived: the table reports delivered against expected.
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([sink.done, new Promise((resolve) => (timer = setTimeout(resolve, 30_000)))]);
  clearTimeout(timer);
  signal.throwIfAborted();
}

async function kgateFetches(engine: Engine): Promise<number> {
  const metric = engine.metrics.getSingleMetric('kgate_kafka_client_requests_total') as Counter | undefined;
  if (metric === undefined) return NaN;
  const { values } = await metric.get();
  return values
    .filter((v) => String(v.labels['api']).toLowerCase() === 'fetch')
    .reduce((a, v) => a + v.value, 0);
}

async function runKgate(cluster: KafkaCluster, n: number, signal: AbortSignal): Promise<Result> {
  const stateDir = await mkdtemp(join(tmpdir(), 'kgate-bench-fanout-'));
  const yaml = [
    'name: bench-fanout',
    'bindings:',
    '  north: { type: kafka, kind: cache_client, exit: cache }',
    '  cache: { type: kafka, kind: cache_server, exit: south }',
    `  south: { type: kafka, kind: client, options: { servers: ["${cluster.bootstrap}"] } }`,
  ].join('\n');
  const engine = new Engine(parseConfig(yaml, 'bench-fanout.yaml'), defaultRegistry(), {
    logger: pino({ level: 'silent' }),
    stateDir,
  });
  await engine.start();
  try {
    const client = engine.binding('north');
    if (!(client instanceof CacheClientBinding)) throw new Error('north is not a cache_client');
    const topic = `fanout-kgate-${n}-${Date.now()}`;
    await cluster.createTopic(topic, { partitions: PARTITIONS });
    const streams: CacheStream[] = [];
    for (let i = 0; i < n; i++) streams.push(await client.open(topic, { defaultOffset: 'live' }));
    const sink = new Sink(n);
    const loops = streams.map(async (s) => {
      for await (const m of s) sink.take(m.value);
    });
    // Let the cache follow every partition before the clock starts.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const before = await kgateFetches(engine);
    const started = await produce(cluster, topic);
    await finish(sink, signal);
    const fetches = (await kgateFetches(engine)) - before;
    for (const s of streams) s.close();
    await Promise.all(loops);
    return {
      name: `kgate cache_client, ${n} streams`,
      consumers: n,
      delivered: sink.delivered,
      elapsedMs: sink.last - started,
      fetches,
      latencies: sink.latencies.subarray(0, Math.min(sink.delivered, sink.latencies.length)),
    };
  } finally {
    await engine.stop(5_000);
    await rm(stateDir, { recursive: true, force: true });
  }
}

async function runDirect(cluster: KafkaCluster, n: number, signal: AbortSignal): Promise<Result> {
  const topic = `fanout-direct-${n}-${Date.now()}`;
  await cluster.createTopic(topic, { partitions: PARTITIONS });
  let fetches = 0;
  const channel = tracingChannel('plt:kafka:consumer:fetches');
  const counter = {
    start: () => void fetches++,
    end: () => undefined,
    asyncStart: () => undefined,
    asyncEnd: () => undefined,
    error: () => undefined,
  };
  channel.subscribe(counter);
  const sink = new Sink(n);
  const consumers = Array.from(
    { length: n },
    () =>
      new Consumer({
        clientId: 'bench-fanout-direct',
        groupId: `bench-fanout-${randomUUID()}`,
        bootstrapBrokers: cluster.bootstrap.split(','),
        maxWaitTime: 100,
        autocommit: false,
      }),
  );
  try {
    const streams = await Promise.all(consumers.map((c) => c.consume({ topics: [topic], mode: 'latest' })));
    const loops = streams.map(async (s) => {
      for await (const m of s) sink.take(m.value as Buffer);
    });
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    fetches = 0;
    const started = await produce(cluster, topic);
    await finish(sink, signal);
    const counted = fetches;
    await Promise.all(streams.map((s) => s.close()));
    await Promise.all(loops.map((l) => l.catch(() => undefined)));
    return {
      name: `@platformatic/kafka, ${n} consumers`,
      consumers: n,
      delivered: sink.delivered,
      elapsedMs: sink.last - started,
      fetches: counted,
      latencies: sink.latencies.subarray(0, Math.min(sink.delivered, sink.latencies.length)),
    };
  } finally {
    channel.unsubscribe(counter);
    await Promise.all(consumers.map((c) => c.close(true).catch(() => undefined)));
  }
}

async function runLive(): Promise<void> {
  const command = `node bench/cache-client-fanout.ts --mode live --rate ${rate} --seconds ${seconds} --size ${size} --streams ${args.streams} --direct ${directCount}`;
  printEnvironment(command);
  const results = await withBroker(20 * 60_000, async (cluster, signal) => {
    const out: Result[] = [];
    for (const n of streamCounts) {
      out.push(await runKgate(cluster, n, signal));
      console.error(`done: ${out.at(-1)?.name}`);
    }
    if (directCount > 0) out.push(await runDirect(cluster, directCount, signal));
    return out;
  });
  console.log(`\n${fmt(produced)} messages of ${size} B at ${fmt(rate)}/s over ${PARTITIONS} partitions`);
  printTable(
    ['consumers', 'delivered / expected', 'delivered msgs/s', 'broker fetches', 'p50 ms', 'p99 ms'],
    results.map((r) => {
      const sorted = Float64Array.from(r.latencies).sort();
      return [
        r.name,
        `${fmt(r.delivered)} / ${fmt(r.consumers * produced)}`,
        fmt(r.delivered / (r.elapsedMs / 1000)),
        fmt(r.fetches),
        fmt(percentile(sorted, 50), 1),
        fmt(percentile(sorted, 99), 1),
      ];
    }),
  );
  console.log(`load average at end: ${loadAverage()}`);
}

if (mode === 'live') await runLive();
else
  await runDrain({
    streams: streamCounts,
    direct: directCount,
    size,
    messages: Number(args.messages),
    maxSeconds: Number(args['max-seconds']),
    peers: new Set(args.peers.split(',')),
    batch: Number(args.batch),
    kgateFetches,
  });
