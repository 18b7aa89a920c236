// The drain mode of cache-client-fanout.ts: a filled topic read from the earliest offset by every
// consumer as fast as it can, so that delivered msgs/s measures the consumers, not a producer.

import { Consumer, Producer } from '@platformatic/kafka';
import { randomUUID } from 'node:crypto';
import { tracingChannel } from 'node:diagnostics_channel';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { pino } from 'pino';
import { defaultRegistry } from '../../src/bindings/index.ts';
import { CacheClientBinding, type CacheStream } from '../../src/bindings/kafka/cache_client/index.ts';
import { CacheServerBinding } from '../../src/bindings/kafka/cache_server/index.ts';
import { parseConfig } from '../../src/config/index.ts';
import type { KafkaCluster } from '../../src/embedded/kafka/index.ts';
import { Engine } from '../../src/engine/engine.ts';
import {
  fmt,
  loadAverage,
  PARTITIONS,
  payloads,
  printEnvironment,
  printTable,
  withBroker,
} from './common.ts';
import { connect, disconnect, loadRdKafka, type RdConsumer, type RdKafka } from './librdkafka.ts';

export interface DrainOptions {
  readonly streams: readonly number[];
  readonly direct: number;
  readonly size: number;
  readonly messages: number;
  readonly maxSeconds: number;
  readonly peers: ReadonlySet<string>;
  /** 0: kgate streams are read with for await; otherwise with nextBatch(batch). */
  readonly batch: number;
  readonly kgateFetches: (engine: Engine) => Promise<number>;
}

interface DrainResult {
  readonly name: string;
  readonly consumers: number;
  readonly delivered: number;
  readonly bytes: number;
  readonly elapsedMs: number;
  readonly fetches: number;
}

/**
 * Counts deliveries of all consumers of one scenario. Every consumer calls take() once per message
 * and stops when it returns true (it has had the whole topic, or time is up), so all do the same
 * work per message. The time limit is checked here rather than by a timer: consumers that always
 * find a message ready never yield to the event loop, so a timer would not fire.
 */
class DrainSink {
  delivered = 0;
  bytes = 0;
  last = 0;
  /** Set when the time limit cut the scenario short. */
  cut = false;
  readonly done: Promise<void>;
  readonly perConsumer: number;
  readonly #expected: number;
  readonly #deadline: number;
  #finished = 0;
  readonly #consumers: number;
  #resolve: (() => void) | undefined;

  constructor(consumers: number, perConsumer: number, maxSeconds: number) {
    this.perConsumer = perConsumer;
    this.#consumers = consumers;
    this.#expected = consumers * perConsumer;
    this.#deadline = performance.now() + maxSeconds * 1000;
    this.done = new Promise((resolve) => (this.#resolve = resolve));
  }

  get expected(): number {
    return this.#expected;
  }

  /** `own` is the consumer's count including this message. */
  take(value: Buffer | null | undefined, own: number): boolean {
    if (this.cut) return true;
    this.delivered++;
    this.bytes += value?.length ?? 0;
    if ((this.delivered & 1023) === 0 && performance.now() > this.#deadline) {
      this.cut = true;
      this.last = performance.now();
      this.#resolve?.();
      return true;
    }
    if (own < this.perConsumer) return false;
    this.last = performance.now();
    if (++this.#finished === this.#consumers) this.#resolve?.();
    return true;
  }
}

/** Resolves when every consumer has everything or the time limit passed. */
async function finish(sink: DrainSink, maxSeconds: number, signal: AbortSignal): Promise<void> {
  // The timer covers consumers that stall waiting for data; see DrainSink for the busy case.
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    sink.done,
    new Promise<void>(
      (resolve) =>
        (timer = setTimeout(() => {
          if (!sink.cut) {
            sink.cut = true;
            sink.last = performance.now();
          }
          resolve();
        }, maxSeconds * 1000)),
    ),
  ]);
  clearTimeout(timer);
  signal.throwIfAborted();
}

async function fill(cluster: KafkaCluster, topic: string, messages: number, size: number): Promise<void> {
  const producer = new Producer({
    clientId: 'bench-fanout-fill',
    bootstrapBrokers: cluster.bootstrap.split(','),
    acks: 1,
  });
  const values = payloads(size);
  const batch = 2000;
  let next = 0;
  try {
    // Several batches in flight keep the broker busy while the next one is encoded.
    const worker = async (): Promise<void> => {
      while (next < messages) {
        const from = next;
        const to = Math.min(messages, from + batch);
        next = to;
        const out = [];
        for (let i = from; i < to; i++)
          out.push({
            topic,
            partition: i % PARTITIONS,
            value: values[i % values.length] ?? Buffer.alloc(size),
          });
        await producer.send({ messages: out });
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
  } finally {
    await producer.close();
  }
}

function kgateEngine(cluster: KafkaCluster, stateDir: string): Engine {
  const yaml = [
    'name: bench-fanout-drain',
    'bindings:',
    '  north: { type: kafka, kind: cache_client, exit: cache }',
    '  cache: { type: kafka, kind: cache_server, exit: south }',
    `  south: { type: kafka, kind: client, options: { servers: ["${cluster.bootstrap}"] } }`,
  ].join('\n');
  return new Engine(parseConfig(yaml, 'bench-fanout-drain.yaml'), defaultRegistry(), {
    logger: pino({ level: 'silent' }),
    stateDir,
  });
}

function cachedNext(engine: Engine, topic: string): number {
  const cache = engine.binding('cache');
  if (!(cache instanceof CacheServerBinding)) throw new Error('cache is not a cache_server');
  const store = cache.store;
  if (store === undefined) return 0;
  let next = 0;
  for (let p = 0; p < PARTITIONS; p++) next += Number(store.partition(topic, p).nextOffset);
  return next;
}

async function kgateDrain(
  engine: Engine,
  topic: string,
  n: number,
  options: DrainOptions,
  signal: AbortSignal,
): Promise<DrainResult> {
  const client = engine.binding('north');
  if (!(client instanceof CacheClientBinding)) throw new Error('north is not a cache_client');
  const sink = new DrainSink(n, options.messages, options.maxSeconds);
  const before = await options.kgateFetches(engine);
  const started = performance.now();
  const streams: CacheStream[] = [];
  for (let i = 0; i < n; i++) streams.push(await client.open(topic, { defaultOffset: 'historical' }));
  const loops = streams.map(async (s) => {
    let own = 0;
    if (options.batch === 0) {
      for await (const m of s) if (sink.take(m.value, ++own)) break;
      return;
    }
    for (;;) {
      const batch = await s.nextBatch(options.batch);
      if (batch.length === 0) return;
      for (const m of batch) if (sink.take(m.value, ++own)) return;
    }
  });
  await finish(sink, options.maxSeconds, signal);
  const fetches = (await options.kgateFetches(engine)) - before;
  for (const s of streams) s.close();
  await Promise.all(loops);
  return {
    name: `kgate cache_client, ${n} streams${options.batch > 0 ? ` (nextBatch ${options.batch})` : ''}`,
    consumers: n,
    delivered: sink.delivered,
    bytes: sink.bytes,
    elapsedMs: sink.last - started,
    fetches,
  };
}

async function platformaticDrain(
  cluster: KafkaCluster,
  topic: string,
  n: number,
  options: DrainOptions,
  signal: AbortSignal,
): Promise<DrainResult> {
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
  const sink = new DrainSink(n, options.messages, options.maxSeconds);
  const consumers = Array.from(
    { length: n },
    () =>
      new Consumer({
        clientId: 'bench-fanout-drain',
        groupId: `bench-fanout-${randomUUID()}`,
        bootstrapBrokers: cluster.bootstrap.split(','),
        maxWaitTime: 100,
        autocommit: false,
      }),
  );
  try {
    // The clock includes joining the group: a direct consumer pays it, a cache_client stream does not.
    const started = performance.now();
    const streams = await Promise.all(consumers.map((c) => c.consume({ topics: [topic], mode: 'earliest' })));
    const loops = streams.map(async (s) => {
      let own = 0;
      for await (const m of s) if (sink.take(m.value, ++own)) break;
    });
    await finish(sink, options.maxSeconds, signal);
    const counted = fetches;
    await Promise.all(streams.map((s) => s.close().catch(() => undefined)));
    await Promise.all(loops.map((l) => l.catch(() => undefined)));
    return {
      name: `@platformatic/kafka, ${n} consumers`,
      consumers: n,
      delivered: sink.delivered,
      bytes: sink.bytes,
      elapsedMs: sink.last - started,
      fetches: counted,
    };
  } finally {
    channel.unsubscribe(counter);
    await Promise.all(consumers.map((c) => c.close(true).catch(() => undefined)));
  }
}

/** librdkafka's statistics event, which the binding's typed surface in librdkafka.ts leaves out. */
interface StatsSource {
  on(event: 'event.stats', listener: (stats: { message: string }) => void): void;
}

interface RdStats {
  readonly brokers?: Record<string, { readonly req?: Record<string, number> }>;
}

function fetchRequests(json: string): number {
  const stats = JSON.parse(json) as RdStats;
  let fetches = 0;
  for (const broker of Object.values(stats.brokers ?? {})) fetches += broker.req?.['Fetch'] ?? 0;
  return fetches;
}

async function rdkafkaDrain(
  rd: RdKafka,
  cluster: KafkaCluster,
  topic: string,
  n: number,
  options: DrainOptions,
  signal: AbortSignal,
): Promise<DrainResult> {
  const sink = new DrainSink(n, options.messages, options.maxSeconds);
  const fetchesOf = new Array<number>(n).fill(0);
  const reports = new Array<number>(n).fill(0);
  const consumers: RdConsumer[] = [];
  for (let i = 0; i < n; i++) {
    const consumer = new rd.KafkaConsumer({
      'metadata.broker.list': cluster.bootstrap,
      'group.id': `bench-fanout-${randomUUID()}`,
      'enable.auto.commit': false,
      'fetch.wait.max.ms': 100,
      'statistics.interval.ms': 1000,
    });
    consumer.on('event.error', () => undefined);
    (consumer as unknown as StatsSource).on('event.stats', (stats) => {
      fetchesOf[i] = fetchRequests(stats.message);
      reports[i] = (reports[i] ?? 0) + 1;
    });
    consumers.push(consumer);
  }
  const consume = (consumer: RdConsumer): Promise<{ value: Buffer | null }[]> =>
    new Promise((resolve, reject) =>
      consumer.consume(10_000, (error, got) => (error === null ? resolve(got) : reject(error))),
    );
  try {
    await Promise.all(consumers.map((c) => connect(c, signal)));
    // Nothing is assigned before the clock starts, so the cumulative Fetch counts start at 0.
    const started = performance.now();
    let stop = false;
    const loops = consumers.map(async (consumer, i) => {
      consumer.setDefaultConsumeTimeout(100);
      consumer.setDefaultIsTimeoutOnlyForFirstMessage?.(true);
      consumer.assign(
        Array.from({ length: PARTITIONS }, (_, partition) => ({ topic, partition, offset: 0 })),
      );
      let own = 0;
      let finished = false;
      while (!stop && !finished) {
        const batch = await consume(consumer);
        for (const m of batch) if ((finished = sink.take(m.value, ++own))) break;
      }
      // Statistics are delivered through consume() calls only: keep polling until the next report,
      // which then counts this consumer's Fetch requests up to at most a second after it finished.
      const seen = reports[i];
      while (!stop && reports[i] === seen) await consume(consumer);
    });
    await finish(sink, options.maxSeconds, signal);
    // Every consumer finished: give the last ones time for their statistics report.
    await Promise.race([Promise.all(loops), delay(3_000)]);
    stop = true;
    await Promise.all(loops.map((l) => l.catch(() => undefined)));
    return {
      name: `librdkafka ${rd.librdkafkaVersion}, ${n} consumers`,
      consumers: n,
      delivered: sink.delivered,
      bytes: sink.bytes,
      elapsedMs: sink.last - started,
      fetches: fetchesOf.reduce((a, b) => a + b, 0),
    };
  } finally {
    await Promise.all(consumers.map((c) => disconnect(c)));
  }
}

export async function runDrain(options: DrainOptions): Promise<void> {
  const command =
    `node bench/cache-client-fanout.ts --mode drain --messages ${options.messages} --size ${options.size} ` +
    `--streams ${options.streams.join(',')} --direct ${options.direct} --max-seconds ${options.maxSeconds} ` +
    `--peers ${[...options.peers].join(',')} --batch ${options.batch}`;
  printEnvironment(command);
  const rd = loadRdKafka();
  if (options.peers.has('rdkafka') && typeof rd === 'string')
    console.log(`librdkafka peer not available: ${rd}`);
  const notes: string[] = [];
  const results = await withBroker(30 * 60_000, async (cluster, signal) => {
    const topic = 'fanout-drain';
    await cluster.createTopic(topic, { partitions: PARTITIONS });
    const fillStarted = performance.now();
    await fill(cluster, topic, options.messages, options.size);
    console.error(`filled ${fmt(options.messages)} in ${fmt((performance.now() - fillStarted) / 1000, 1)} s`);
    const out: DrainResult[] = [];
    const note = (): void => {
      const r = out.at(-1);
      if (r !== undefined)
        console.error(`${r.name}: ${fmt(r.delivered / (r.elapsedMs / 1000))} msgs/s, load ${loadAverage()}`);
    };
    if (options.streams.length > 0) {
      const stateDir = await mkdtemp(join(tmpdir(), 'kgate-bench-drain-'));
      const engine = kgateEngine(cluster, stateDir);
      try {
        await engine.start();
        const client = engine.binding('north');
        if (!(client instanceof CacheClientBinding)) throw new Error('north is not a cache_client');
        // Held for the whole run, so the cache keeps following the topic between scenarios.
        const ingestStarted = performance.now();
        const before = await options.kgateFetches(engine);
        const attached = await client.exitFor(topic).attach(topic);
        try {
          while (cachedNext(engine, topic) < options.messages) {
            signal.throwIfAborted();
            await delay(5);
          }
          notes.push(
            `kgate cache ingest before the clock: ${fmt(options.messages)} messages in ` +
              `${fmt(performance.now() - ingestStarted)} ms, ${fmt((await options.kgateFetches(engine)) - before)} Fetch requests`,
          );
          for (const n of options.streams) {
            out.push(await kgateDrain(engine, topic, n, options, signal));
            note();
          }
        } finally {
          attached.release();
        }
      } finally {
        await engine.stop(5_000);
        await rm(stateDir, { recursive: true, force: true });
      }
    }
    if (options.direct > 0 && options.peers.has('platformatic')) {
      out.push(await platformaticDrain(cluster, topic, options.direct, options, signal));
      note();
    }
    if (options.direct > 0 && options.peers.has('rdkafka') && typeof rd !== 'string') {
      out.push(await rdkafkaDrain(rd, cluster, topic, options.direct, options, signal));
      note();
    }
    return out;
  });
  console.log(
    `\n${fmt(options.messages)} messages of ${options.size} B over ${PARTITIONS} partitions, ` +
      `every consumer reads all of them from the earliest offset (cut off after ${options.maxSeconds} s)`,
  );
  for (const n of notes) console.log(n);
  printTable(
    ['consumers', 'delivered / expected', 'delivered msgs/s', 'MB/s', 'broker fetches', 'to last delivery s'],
    results.map((r) => [
      r.name,
      `${fmt(r.delivered)} / ${fmt(r.consumers * options.messages)}`,
      fmt(r.delivered / (r.elapsedMs / 1000)),
      fmt(r.bytes / 1e6 / (r.elapsedMs / 1000), 1),
      fmt(r.fetches),
      fmt(r.elapsedMs / 1000, 2),
    ]),
  );
  console.log(`load average at end: ${loadAverage()}`);
}
