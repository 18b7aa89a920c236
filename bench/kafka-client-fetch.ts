// Fetch throughput of kgate's Kafka client against @platformatic/kafka and librdkafka, on the
// same broker and the same topics in one run.
//   node bench/kafka-client-fetch.ts [--rounds 3] [--small 1000000] [--large 200000] [--clients kgate,kcat]
// Every client reads every record of an 8-partition topic from offset 0 to the end. The clock
// starts when reading starts (connections and group membership come before) and stops at the last
// record; kcat's time includes its process start, so it is an upper bound for librdkafka.

import { Consumer } from '@platformatic/kafka';
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { KafkaClient } from '../src/bindings/kafka/client/index.ts';
import type { KafkaCluster } from '../src/embedded/kafka/index.ts';
import {
  fmt,
  loadAverage,
  median,
  PARTITIONS,
  payloads,
  printEnvironment,
  printTable,
  rotate,
  withBroker,
} from './lib/common.ts';
import {
  connect,
  disconnect,
  kcatReadAll,
  kcatVersion,
  loadRdKafka,
  type RdKafka,
} from './lib/librdkafka.ts';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    small: { type: 'string', default: '1000000' },
    large: { type: 'string', default: '200000' },
    clients: { type: 'string' },
  },
});
const rounds = Number(args.rounds);
/** Equal partitions keep every partition's end offset known in advance. */
const perPartitionCount = (n: string | undefined): number => Math.ceil(Number(n) / PARTITIONS) * PARTITIONS;

interface Case {
  readonly name: string;
  readonly topic: string;
  readonly size: number;
  readonly messages: number;
}

const cases: Case[] = [
  { name: '100 B', topic: 'bench-fetch-100b', size: 100, messages: perPartitionCount(args.small) },
  { name: '1 KB', topic: 'bench-fetch-1kb', size: 1024, messages: perPartitionCount(args.large) },
];

/** What a reader saw: the benchmark fails rather than report a run that missed records. */
interface Read {
  readonly ms: number;
  readonly messages: number;
  readonly bytes: number;
}

type Reader = (cluster: KafkaCluster, c: Case, signal: AbortSignal) => Promise<Read>;

/** Writes the records with kgate's client; how fast does not matter here. */
async function fill(cluster: KafkaCluster, c: Case): Promise<void> {
  await cluster.createTopic(c.topic, { partitions: PARTITIONS });
  const client = new KafkaClient({ servers: [cluster.bootstrap] });
  await client.start();
  const values = payloads(c.size);
  const perPartition = Math.ceil(c.messages / PARTITIONS);
  try {
    await Promise.all(
      Array.from({ length: PARTITIONS }, async (_, partition) => {
        for (let o = 0; o < perPartition; o += 1000) {
          const records = Array.from({ length: Math.min(1000, perPartition - o) }, (_, i) => ({
            value: values[(o + i) % values.length] ?? null,
          }));
          await client.produce(c.topic, partition, records, { acks: 1 });
        }
      }),
    );
  } finally {
    await client.close();
  }
}

function endOffsets(c: Case): bigint[] {
  const perPartition = Math.ceil(c.messages / PARTITIONS);
  return Array.from({ length: PARTITIONS }, () => BigInt(perPartition));
}

const kgate: Reader = async (cluster, c, signal) => {
  const client = new KafkaClient({ servers: [cluster.bootstrap] });
  await client.start(signal);
  try {
    const ends = endOffsets(c);
    let messages = 0;
    let bytes = 0;
    const started = performance.now();
    await Promise.all(
      ends.map(async (end, partition) => {
        if (end === 0n) return;
        for await (const result of client.fetch(c.topic, partition, 0n, { signal })) {
          for (const batch of result.batches) {
            for (const record of batch.records) {
              messages++;
              bytes += record.value?.length ?? 0;
            }
          }
          if (result.nextOffset >= end) break;
        }
      }),
    );
    return { ms: performance.now() - started, messages, bytes };
  } finally {
    await client.close();
  }
};

/** The Consumer as applications use it: a group member's message stream. */
const platformaticStream: Reader = async (cluster, c, signal) => {
  const consumer = new Consumer({
    clientId: 'bench',
    groupId: `bench-${randomUUID()}`,
    bootstrapBrokers: [cluster.bootstrap],
    autocommit: false,
    maxWaitTime: 250,
  });
  try {
    const stream = await consumer.consume({ topics: [c.topic], mode: 'earliest' });
    const started = performance.now();
    let messages = 0;
    let bytes = 0;
    for await (const message of stream) {
      signal.throwIfAborted();
      messages++;
      bytes += message.value.length;
      if (messages >= c.messages) break;
    }
    const ms = performance.now() - started;
    await stream.close();
    return { ms, messages, bytes };
  } finally {
    await consumer.close(true);
  }
};

/** The Consumer's raw Fetch API: no group, all partitions in one request, the closest match to kgate's fetch. */
const platformaticFetch: Reader = async (cluster, c, signal) => {
  const consumer = new Consumer({
    clientId: 'bench',
    groupId: 'unused',
    bootstrapBrokers: [cluster.bootstrap],
  });
  try {
    const metadata = await consumer.metadata({ topics: [c.topic] });
    const topic = metadata.topics.get(c.topic);
    if (topic === undefined) throw new Error(`no metadata for ${c.topic}`);
    const node = topic.partitions[0]?.leader ?? 1;
    const ends = endOffsets(c);
    const offsets = ends.map(() => 0n);
    let messages = 0;
    let bytes = 0;
    const started = performance.now();
    while (offsets.some((o, p) => o < (ends[p] ?? 0n))) {
      signal.throwIfAborted();
      const response = await consumer.fetch({
        node,
        maxWaitTime: 250,
        minBytes: 1,
        maxBytes: 50 * 1024 * 1024,
        topics: [
          {
            topicId: topic.id,
            partitions: offsets.flatMap((fetchOffset, partition) =>
              fetchOffset < (ends[partition] ?? 0n)
                ? [
                    {
                      partition,
                      fetchOffset,
                      partitionMaxBytes: 1024 * 1024,
                      currentLeaderEpoch: -1,
                      lastFetchedEpoch: -1,
                    },
                  ]
                : [],
            ),
          },
        ],
      });
      for (const t of response.responses) {
        for (const p of t.partitions) {
          if (p.errorCode !== 0)
            throw new Error(`fetch error ${p.errorCode} on partition ${p.partitionIndex}`);
          for (const batch of p.records ?? []) {
            for (const record of batch.records) {
              messages++;
              bytes += record.value?.length ?? 0;
            }
            offsets[p.partitionIndex] = batch.firstOffset + BigInt(batch.lastOffsetDelta) + 1n;
          }
        }
      }
    }
    return { ms: performance.now() - started, messages, bytes };
  } finally {
    await consumer.close(true);
  }
};

function rdkafkaReader(rd: RdKafka): Reader {
  return async (cluster, c, signal) => {
    const consumer = new rd.KafkaConsumer({
      'metadata.broker.list': cluster.bootstrap,
      'group.id': `bench-${randomUUID()}`,
      'enable.auto.commit': false,
      'fetch.wait.max.ms': 250,
    });
    consumer.on('event.error', () => undefined);
    await connect(consumer, signal);
    try {
      const ends = endOffsets(c);
      let messages = 0;
      let bytes = 0;
      consumer.setDefaultConsumeTimeout(250);
      // As the binding's KafkaJS layer does; otherwise consume(n) may wait once per message.
      consumer.setDefaultIsTimeoutOnlyForFirstMessage?.(true);
      const started = performance.now();
      consumer.assign(ends.map((_, partition) => ({ topic: c.topic, partition, offset: 0 })));
      while (messages < c.messages) {
        signal.throwIfAborted();
        const batch = await new Promise<{ value: Buffer | null }[]>((resolve, reject) =>
          consumer.consume(Math.min(10_000, c.messages - messages), (error, got) =>
            error === null ? resolve(got) : reject(error),
          ),
        );
        for (const m of batch) {
          messages++;
          bytes += m.value?.length ?? 0;
        }
      }
      return { ms: performance.now() - started, messages, bytes };
    } finally {
      await disconnect(consumer);
    }
  };
}

const kcat: Reader = async (cluster, c, signal) => {
  const ms = await kcatReadAll(cluster.bootstrap, c.topic, signal);
  // kcat prints nothing per record, so the count is what -e (stop at the end) implies.
  return { ms, messages: c.messages, bytes: c.messages * c.size };
};

const rd = loadRdKafka();
const kcatLib = await kcatVersion();
const readers: { name: string; read: Reader; peer: 'js' | 'rdkafka' | 'self' }[] = [
  { name: 'kgate KafkaClient.fetch', read: kgate, peer: 'self' },
  { name: '@platformatic/kafka Consumer.consume', read: platformaticStream, peer: 'js' },
  { name: '@platformatic/kafka Consumer.fetch', read: platformaticFetch, peer: 'js' },
];
if (typeof rd !== 'string') {
  readers.push({
    name: `librdkafka ${rd.librdkafkaVersion} (kafka-javascript)`,
    read: rdkafkaReader(rd),
    peer: 'rdkafka',
  });
}
if (kcatLib !== undefined)
  readers.push({ name: `kcat (librdkafka ${kcatLib})`, read: kcat, peer: 'rdkafka' });
const only = args.clients?.split(',');
const selected = only === undefined ? readers : readers.filter((r) => only.some((o) => r.name.includes(o)));

printEnvironment(
  `node bench/kafka-client-fetch.ts --rounds ${rounds} --small ${args.small} --large ${args.large}`,
);
if (typeof rd === 'string') console.log(`@confluentinc/kafka-javascript not available (${rd}); kcat only`);

await withBroker(10 * 60_000, async (cluster, signal) => {
  for (const c of cases) {
    const started = performance.now();
    await fill(cluster, c);
    console.log(
      `filled ${c.topic}: ${fmt(c.messages)} x ${c.name} in ${fmt(performance.now() - started)} ms`,
    );
  }
  const rows: string[][] = [];
  for (const c of cases) {
    const times = new Map<string, number[]>(selected.map((r) => [r.name, []]));
    for (let round = 0; round < rounds; round++) {
      for (const reader of rotate(selected, round)) {
        const read = await reader.read(cluster, c, signal);
        const expected = c.messages * c.size;
        if (read.messages !== c.messages || read.bytes !== expected) {
          throw new Error(
            `${reader.name} read ${read.messages} records / ${read.bytes} B, expected ${c.messages} / ${expected}`,
          );
        }
        times.get(reader.name)?.push(read.ms);
        console.log(
          `  ${c.name} round ${round + 1} ${reader.name}: ${fmt(read.ms)} ms, ${fmt(c.messages / (read.ms / 1000))} msgs/s (load ${loadAverage()})`,
        );
      }
    }
    const rate = (name: string): number => c.messages / (median(times.get(name) ?? []) / 1000);
    const fastestJs = Math.max(...selected.filter((r) => r.peer === 'js').map((r) => rate(r.name)));
    const kgateRate = rate(readers[0]?.name ?? '');
    for (const reader of selected) {
      const msgs = rate(reader.name);
      rows.push([
        c.name,
        reader.name,
        fmt(msgs),
        fmt((msgs * c.size) / 1e6, 1),
        fmt(median(times.get(reader.name) ?? [])),
        reader.peer === 'self'
          ? Number.isFinite(fastestJs)
            ? `${fmt(kgateRate / fastestJs, 2)}x fastest JS`
            : ''
          : `${fmt(kgateRate / msgs, 2)}x`,
      ]);
    }
  }
  console.log(
    `\nmedian of ${rounds} rounds, ${PARTITIONS} partitions, load average at end: ${loadAverage()}\n`,
  );
  printTable(['size', 'client', 'msgs/s', 'MB/s', 'ms', 'kgate / this'], rows);
});
