// Produce throughput and ack latency of kgate's Kafka client against @platformatic/kafka and
// librdkafka, on the same broker and topics in one run.
//   node bench/kafka-client-produce.ts [--rounds 3] [--window 1000] [--scale 1]
// Each partition keeps at most --window records unacknowledged (acks=all), submitted in calls of
// `batch` records; a record's latency runs from its call to its acknowledgement. A client's own
// batching (kgate merges calls made while a request is out, librdkafka lingers) is part of what is
// measured, so one-record calls and 100-record calls are both run.

import { Producer, ProduceAcks } from '@platformatic/kafka';
import { parseArgs } from 'node:util';
import { KafkaClient } from '../src/bindings/kafka/client/index.ts';
import type { KafkaCluster } from '../src/embedded/kafka/index.ts';
import {
  fmt,
  loadAverage,
  median,
  PARTITIONS,
  payloads,
  percentile,
  printEnvironment,
  printTable,
  rotate,
  withBroker,
} from './lib/common.ts';
import { connect, disconnect, loadRdKafka, type RdKafka } from './lib/librdkafka.ts';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    window: { type: 'string', default: '1000' },
    scale: { type: 'string', default: '1' },
    clients: { type: 'string' },
  },
});
const rounds = Number(args.rounds);
const windowSize = Number(args.window);
const scale = Number(args.scale);

interface Case {
  readonly name: string;
  readonly size: number;
  readonly batch: number;
  readonly messages: number;
}

const count = (n: number): number => Math.ceil((n * scale) / PARTITIONS) * PARTITIONS;
const cases: Case[] = [
  { name: '100 B, 1/call', size: 100, batch: 1, messages: count(16_000) },
  { name: '100 B, 100/call', size: 100, batch: 100, messages: count(400_000) },
  { name: '1 KB, 1/call', size: 1024, batch: 1, messages: count(16_000) },
  { name: '1 KB, 100/call', size: 1024, batch: 100, messages: count(200_000) },
];

/** Sends one call's records to one partition; resolves when all are acknowledged. */
type Send = (partition: number, values: readonly Buffer[]) => Promise<void>;

interface Session {
  readonly send: Send;
  close(): Promise<void>;
}

interface Run {
  readonly ms: number;
  readonly p50: number;
  readonly p99: number;
}

/** Drives `send` with at most `windowSize` records in flight per partition and times every record. */
async function drive(send: Send, c: Case, topicValues: readonly Buffer[], signal: AbortSignal): Promise<Run> {
  const perPartition = c.messages / PARTITIONS;
  const latencies = new Float64Array(c.messages);
  let recorded = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: PARTITIONS }, (_, partition) => {
      let submitted = 0;
      let inFlight = 0;
      return new Promise<void>((resolve, reject) => {
        const pump = (): void => {
          if (signal.aborted) {
            reject(signal.reason as Error);
            return;
          }
          while (submitted < perPartition && inFlight + c.batch <= Math.max(windowSize, c.batch)) {
            const n = Math.min(c.batch, perPartition - submitted);
            const values = Array.from(
              { length: n },
              (_, i) => topicValues[(submitted + i) % topicValues.length] as Buffer,
            );
            submitted += n;
            inFlight += n;
            const t0 = performance.now();
            send(partition, values).then(() => {
              const latency = performance.now() - t0;
              for (let i = 0; i < n; i++) latencies[recorded++] = latency;
              inFlight -= n;
              if (submitted === perPartition && inFlight === 0) resolve();
              else pump();
            }, reject);
          }
        };
        pump();
      });
    }),
  );
  const ms = performance.now() - started;
  if (recorded !== c.messages) throw new Error(`${recorded} of ${c.messages} records acknowledged`);
  latencies.sort();
  return { ms, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

type Open = (cluster: KafkaCluster, topic: string, signal: AbortSignal) => Promise<Session>;

const kgate: Open = async (cluster, topic, signal) => {
  const client = new KafkaClient({ servers: [cluster.bootstrap] });
  await client.start(signal);
  return {
    send: async (partition, values) => {
      await client.produce(
        topic,
        partition,
        values.map((value) => ({ value })),
        { acks: -1 },
      );
    },
    close: () => client.close(),
  };
};

const platformatic: Open = async (cluster, topic) => {
  const producer = new Producer({
    clientId: 'bench',
    bootstrapBrokers: [cluster.bootstrap],
    acks: ProduceAcks.ALL,
  });
  // The first send also fetches metadata; keep that out of the timed part.
  await producer.metadata({ topics: [topic] });
  return {
    send: async (partition, values) => {
      await producer.send({ messages: values.map((value) => ({ topic, partition, value })) });
    },
    close: () => producer.close(),
  };
};

function rdkafka(rd: RdKafka): Open {
  return async (cluster, topic, signal) => {
    const producer = new rd.Producer({
      'metadata.broker.list': cluster.bootstrap,
      acks: 'all',
      dr_cb: true,
      'queue.buffering.max.messages': 1_000_000,
    });
    const pending = new Map<number, { left: number; resolve: () => void; reject: (error: Error) => void }>();
    let nextId = 0;
    producer.on('delivery-report', (error, report) => {
      const id = report.opaque as number;
      const call = pending.get(id);
      if (call === undefined) return;
      if (error !== null) {
        pending.delete(id);
        call.reject(error);
      } else if (--call.left === 0) {
        pending.delete(id);
        call.resolve();
      }
    });
    producer.on('event.error', () => undefined);
    await connect(producer, signal);
    // Delivery reports come from librdkafka's queue; a background thread hands them over as they
    // arrive, where a poll interval would add up to the interval to every latency.
    if (typeof producer.setPollInBackground === 'function') producer.setPollInBackground(true);
    else producer.setPollInterval(1);
    return {
      send: (partition, values) =>
        new Promise<void>((resolve, reject) => {
          const id = nextId++;
          pending.set(id, { left: values.length, resolve, reject });
          for (const value of values) producer.produce(topic, partition, value, null, null, id);
        }),
      close: () => disconnect(producer),
    };
  };
}

const rd = loadRdKafka();
const clients: { name: string; open: Open; peer: 'self' | 'js' | 'rdkafka' }[] = [
  { name: 'kgate KafkaClient.produce', open: kgate, peer: 'self' },
  { name: '@platformatic/kafka Producer.send', open: platformatic, peer: 'js' },
];
if (typeof rd !== 'string')
  clients.push({
    name: `librdkafka ${rd.librdkafkaVersion} (kafka-javascript)`,
    open: rdkafka(rd),
    peer: 'rdkafka',
  });
const only = args.clients?.split(',');
const selected = only === undefined ? clients : clients.filter((r) => only.some((o) => r.name.includes(o)));

printEnvironment(
  `node bench/kafka-client-produce.ts --rounds ${rounds} --window ${windowSize} --scale ${scale}`,
);
if (typeof rd === 'string')
  console.log(`@confluentinc/kafka-javascript not available (${rd}); no librdkafka peer`);

await withBroker(10 * 60_000, async (cluster, signal) => {
  const rows: string[][] = [];
  for (const c of cases) {
    const topic = `bench-produce-${c.size}-${c.batch}`;
    await cluster.createTopic(topic, { partitions: PARTITIONS });
    const values = payloads(c.size);
    const runs = new Map<string, Run[]>(selected.map((r) => [r.name, []]));
    // An untimed quarter-size run per client first: JIT warm-up, and the broker's first appends
    // to a fresh topic, would otherwise be charged to whichever client goes first.
    const warmup: Case = { ...c, messages: Math.ceil(c.messages / 4 / PARTITIONS) * PARTITIONS };
    for (const client of selected) {
      const session = await client.open(cluster, topic, signal);
      try {
        await drive(session.send, warmup, values, signal);
      } finally {
        await session.close();
      }
    }
    for (let round = 0; round < rounds; round++) {
      for (const client of rotate(selected, round)) {
        const session = await client.open(cluster, topic, signal);
        try {
          const run = await drive(session.send, c, values, signal);
          runs.get(client.name)?.push(run);
          console.log(
            `  ${c.name} round ${round + 1} ${client.name}: ${fmt(run.ms)} ms, ${fmt(c.messages / (run.ms / 1000))} msgs/s, ` +
              `p50 ${fmt(run.p50, 1)} ms, p99 ${fmt(run.p99, 1)} ms (load ${loadAverage()})`,
          );
        } finally {
          await session.close();
        }
      }
    }
    const stat = (name: string, key: keyof Run): number => median((runs.get(name) ?? []).map((r) => r[key]));
    const rate = (name: string): number => c.messages / (stat(name, 'ms') / 1000);
    const fastestJs = Math.max(...selected.filter((r) => r.peer === 'js').map((r) => rate(r.name)));
    const kgateName = clients[0]?.name ?? '';
    for (const client of selected) {
      const msgs = rate(client.name);
      rows.push([
        c.name,
        client.name,
        fmt(msgs),
        fmt((msgs * c.size) / 1e6, 1),
        fmt(stat(client.name, 'p50'), 1),
        fmt(stat(client.name, 'p99'), 1),
        client.peer === 'self'
          ? Number.isFinite(fastestJs)
            ? `${fmt(rate(kgateName) / fastestJs, 2)}x fastest JS`
            : ''
          : `${fmt(rate(kgateName) / msgs, 2)}x`,
        client.peer === 'self' ? '' : `${fmt(stat(kgateName, 'p99') / stat(client.name, 'p99'), 2)}x`,
      ]);
    }
  }
  console.log(
    `\nmedian of ${rounds} rounds, ${PARTITIONS} partitions, acks=all, window ${windowSize} records per partition, ` +
      `load average at end: ${loadAverage()}\n`,
  );
  printTable(
    ['case', 'client', 'msgs/s', 'MB/s', 'p50 ms', 'p99 ms', 'kgate / this msgs/s', 'kgate / this p99'],
    rows,
  );
});
