// Conversion of Avro values to JSON for readers (`view: json`), no broker needed.
//   node bench/models-conversion.ts [--records 2000] [--streams 1000] [--rounds 3]
// 1. Fan-out: `streams` cache_client streams each read every record of an 8-partition topic held
//    in real partition stores (the cache_server's), once for a topic of JSON values read as they
//    are, once for the same values as Avro with the registry's wire header read with `view: json`;
//    rounds alternate. events/s = streams x records / elapsed.
// 2. Conversion throughput, records/s: a plain avsc decode loop, avsc decode + JSON.stringify,
//    and kgate's TopicModel.viewOf (header, schema by id, decode, JSON, the memo), each over the
//    same distinct values with nothing converted before.
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import avro from 'avsc';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { CacheClientModels, type RecordViews } from '../src/bindings/kafka/cache_client/models.ts';
import { CacheStream } from '../src/bindings/kafka/cache_client/stream.ts';
import { createCatalog } from '../src/models/catalog.ts';
import { TopicModel } from '../src/models/topic-model.ts';
import { frame } from '../src/models/wire.ts';
import { closeFakeTopics, FakeCacheServer, FakeTopic } from '../test/support/fake-cache.ts';
import { fmt, median, PARTITIONS, printEnvironment, printTable } from './lib/common.ts';

const { values: args } = parseArgs({
  options: {
    records: { type: 'string', default: '2000' },
    streams: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '3' },
  },
});
const records = Number(args.records);
const streamCount = Number(args.streams);
const rounds = Number(args.rounds);

const SCHEMA = JSON.stringify({
  type: 'record',
  name: 'Item',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'status', type: 'string' },
    { name: 'price', type: 'double' },
    { name: 'count', type: 'int' },
    { name: 'tags', type: { type: 'array', items: 'string' } },
  ],
});
const TYPE = avro.Type.forSchema(JSON.parse(SCHEMA) as avro.Schema);
const item = (i: number): Record<string, unknown> => ({
  id: `item-${i}`,
  status: i % 3 === 0 ? 'sold' : 'available',
  price: i * 1.25,
  count: i % 100,
  tags: ['red', `size-${i % 5}`],
});

async function main(): Promise<void> {
  printEnvironment(
    `node bench/models-conversion.ts --records ${records} --streams ${streamCount} --rounds ${rounds}`,
  );
  const registry = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ schema: SCHEMA }));
  });
  registry.listen(0, '127.0.0.1');
  await once(registry, 'listening');
  const url = `http://127.0.0.1:${(registry.address() as AddressInfo).port}`;
  try {
    const avroValues = Array.from({ length: records }, (_, i) => frame(1, TYPE.toBuffer(item(i))));
    const jsonValues = Array.from({ length: records }, (_, i) => Buffer.from(JSON.stringify(item(i))));
    const fill = (name: string, values: readonly Buffer[]): FakeTopic => {
      const topic = new FakeTopic(name, { partitions: PARTITIONS });
      for (let p = 0; p < PARTITIONS; p++) {
        const mine = values.filter((_, i) => i % PARTITIONS === p);
        topic.append(
          p,
          mine.map((value, offset) => ({
            offset: BigInt(offset),
            timestamp: 1_000 + offset,
            key: Buffer.from(`k${offset * PARTITIONS + p}`),
            value,
            headers: [],
          })),
        );
      }
      return topic;
    };
    const jsonTopic = fill('items-json', jsonValues);
    const avroTopic = fill('items-avro', avroValues);

    const fanOut = async (topic: FakeTopic, views: RecordViews | undefined): Promise<number> => {
      const server = new FakeCacheServer();
      const streams = Array.from(
        { length: streamCount },
        () =>
          new CacheStream({
            topic,
            exit: server,
            options: {},
            defaultOffset: 'historical',
            ...(views === undefined ? {} : { views }),
          }),
      );
      const started = performance.now();
      let delivered = 0;
      let bytes = 0;
      await Promise.all(
        streams.map(async (stream) => {
          let mine = 0;
          while (mine < records) {
            const batch = await stream.nextBatch(64);
            for (const message of batch) bytes += message.value?.length ?? 0;
            mine += batch.length;
          }
          delivered += mine;
          stream.close();
        }),
      );
      const elapsed = performance.now() - started;
      if (delivered !== streamCount * records || bytes === 0)
        throw new Error('not every record was delivered');
      return (delivered / elapsed) * 1000;
    };

    const jsonRates: number[] = [];
    const avroRates: number[] = [];
    const conversions: number[] = [];
    for (let round = 0; round < rounds; round++) {
      jsonRates.push(await fanOut(jsonTopic, undefined));
      // A new model per round: every record is converted again, once for all the streams.
      const models = new CacheClientModels(
        'bench',
        [
          {
            name: 'items-avro',
            value: { model: 'avro', view: 'json', catalog: { reg: [{ strategy: 'topic' }] } },
          },
        ],
        { reg: { type: 'schema-registry', options: { url } } },
        new Registry(),
        pino({ level: 'silent' }),
      );
      avroRates.push(await fanOut(avroTopic, models.viewsFor('items-avro')));
      conversions.push(models.conversions);
    }
    const jsonRate = median(jsonRates);
    const avroRate = median(avroRates);
    console.log(
      `\n### Fan-out: ${streamCount} streams x ${records} records, ${PARTITIONS} partitions, median of ${rounds}\n`,
    );
    printTable(
      ['topic', 'events/s', 'vs JSON', 'conversions per round'],
      [
        ['JSON values, read as they are', fmt(jsonRate), '1.00x', '0'],
        [
          'Avro values, view: json',
          fmt(avroRate),
          `${(avroRate / jsonRate).toFixed(2)}x`,
          conversions.join(', '),
        ],
      ],
    );

    // Conversion throughput over distinct values, nothing memoized before; each loop run once to
    // warm up, then `rounds` times, alternating.
    const bodies = avroValues.map((value) => value.subarray(5));
    const catalog = createCatalog('reg', { type: 'schema-registry', options: { url } });
    await catalog.byId(1);
    const ref = { model: 'avro', view: 'json', catalog: { reg: [{ strategy: 'topic' }] } } as const;
    let sink = 0;
    const loopsOf: readonly [string, () => void][] = [
      [
        'avsc fromBuffer',
        () => {
          for (const body of bodies) sink += (TYPE.fromBuffer(body) as { count: number }).count;
        },
      ],
      [
        'avsc fromBuffer + JSON.stringify + Buffer.from',
        () => {
          for (const body of bodies) sink += Buffer.from(JSON.stringify(TYPE.fromBuffer(body))).length;
        },
      ],
      [
        'kgate TopicModel.viewOf (header, schema by id, decode, JSON, memo)',
        () => {
          const model = new TopicModel(ref, new Map([['reg', catalog]]), 'items-avro', 'value');
          avroValues.forEach((value, i) => {
            const viewed = model.viewOf(i % PARTITIONS, BigInt(i), value);
            if ('value' in viewed) sink += viewed.value.length;
          });
        },
      ],
    ];
    const rates = loopsOf.map((): number[] => []);
    for (let round = 0; round <= rounds; round++) {
      loopsOf.forEach(([, body], i) => {
        const started = performance.now();
        body();
        if (round > 0) rates[i]?.push((records / (performance.now() - started)) * 1000);
      });
    }
    const plain = median(rates[0] ?? []);
    console.log(`\n### Conversion throughput, ${records} distinct values, median of ${rounds}\n`);
    printTable(
      ['loop', 'records/s', 'vs plain decode'],
      loopsOf.map(([name], i) => {
        const rate = median(rates[i] ?? []);
        return [name, fmt(rate), `${(rate / plain).toFixed(2)}x`];
      }),
    );
    if (sink === 0) console.log('');
  } finally {
    registry.close();
    await closeFakeTopics();
  }
}

await main();
