// SSE fan-out: N concurrent `GET /events/fanout` connections (1000 by default) on one 8-partition
// topic, through tcp -> http -> sse -> sse-kafka -> cache_client -> cache_server -> client.
//   node bench/north-sse-fanout.ts [--connections 1000] [--rate 200] [--seconds 10] [--size 100] [--workers 0]
// With --workers N, kgate runs as `kgate start --workers N` does: N worker threads serve the SSE
// connections beside the main thread, which alone fetches and writes the cache.
// kgate runs in this process; the SSE clients and a @platformatic/kafka producer sending `rate`
// messages/s for `seconds` run in a forked load process. Each value starts with its send time, so
// the load process measures produce-to-event latency on one clock. Broker Fetch requests come from
// kgate_kafka_client_requests_total, RSS from process.memoryUsage() of this process (the broker is a
// separate JVM process, not counted).

import { Producer } from '@platformatic/kafka';
import { Agent, request, type IncomingMessage } from 'node:http';
import { parseArgs } from 'node:util';
import { fmt, loadAverage, PARTITIONS, printEnvironment, printTable, withBroker } from './lib/common.ts';
import {
  cpuMs,
  kgateFetches,
  LoadProcess,
  MiB,
  ms,
  now,
  parentChannel,
  sampleRss,
  Samples,
  startGateway,
  summarize,
  type Latency,
} from './north-common.ts';

const { values: args } = parseArgs({
  options: {
    connections: { type: 'string', default: '1000' },
    workers: { type: 'string', default: '0' },
    rate: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '10' },
    size: { type: 'string', default: '100' },
    role: { type: 'string', default: 'gateway' },
    port: { type: 'string', default: '0' },
    bootstrap: { type: 'string', default: '' },
    topic: { type: 'string', default: '' },
  },
});
const connections = Number(args.connections);
const workers = Number(args.workers);
const rate = Number(args.rate);
const seconds = Number(args.seconds);
const size = Math.max(32, Number(args.size));
const produced = rate * seconds;

type Down = { type: 'go' };
type Up =
  | { type: 'connected'; connected: number }
  | {
      type: 'result';
      delivered: number;
      elapsedMs: number;
      latency: Latency;
      connected: number;
      failed: number;
      cpuMs: number;
    };

async function load(): Promise<void> {
  const channel = parentChannel<Down, Up>();
  const agent = new Agent({ keepAlive: true, maxSockets: connections, maxTotalSockets: connections });
  const latencies = new Samples();
  let delivered = 0;
  let last = 0;
  let failed = 0;
  const responses: IncomingMessage[] = [];
  const take = (line: string): void => {
    if (!line.startsWith('data: ')) return;
    const sent = Number.parseFloat(line.slice(6));
    if (Number.isNaN(sent)) return;
    last = now();
    latencies.push(last - sent);
    delivered++;
  };
  const open = (): Promise<void> =>
    new Promise((resolve) => {
      const req = request(
        {
          agent,
          host: '127.0.0.1',
          port: Number(args.port),
          path: '/events/fanout',
          headers: { accept: 'text/event-stream' },
        },
        (res) => {
          if (res.statusCode !== 200) {
            failed++;
            res.resume();
            resolve();
            return;
          }
          responses.push(res);
          res.setEncoding('utf8');
          let rest = '';
          res.on('data', (chunk: string) => {
            const text = rest + chunk;
            let start = 0;
            for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
              take(text.slice(start, nl));
              start = nl + 1;
            }
            rest = text.slice(start);
          });
          res.on('error', () => undefined);
          resolve();
        },
      );
      req.on('error', () => {
        failed++;
        resolve();
      });
      req.end();
    });
  // Opened in waves so the accept backlog is not what is being measured.
  for (let i = 0; i < connections; i += 100)
    await Promise.all(Array.from({ length: Math.min(100, connections - i) }, open));
  channel.send({ type: 'connected', connected: responses.length });
  await channel.next();

  const producer = new Producer({
    clientId: 'bench-north-sse-producer',
    bootstrapBrokers: args.bootstrap.split(','),
    acks: 1,
  });
  // At least one message per tick, with the tick stretched to fit, so low rates stay exact.
  const perTick = Math.max(1, Math.round(rate / 100));
  const tick = (perTick * 1000) / rate;
  const started = now();
  const cpuBefore = process.cpuUsage();
  let sent = 0;
  const pad = 'x'.repeat(size);
  try {
    while (sent < produced) {
      const n = Math.min(perTick, produced - sent);
      const stamp = now().toFixed(3);
      const messages = Array.from({ length: n }, (_, i) => ({
        topic: args.topic,
        partition: (sent + i) % PARTITIONS,
        key: Buffer.from(`k${(sent + i) % 1000}`),
        value: Buffer.from(`${stamp} ${pad}`.slice(0, size)),
      }));
      await producer.send({ messages });
      sent += n;
      const due = started + (sent / perTick) * tick - now();
      if (due > 0) await new Promise((resolve) => setTimeout(resolve, due));
    }
  } finally {
    await producer.close();
  }
  // Ends with what arrived after at most 30 s: the table shows delivered against expected.
  const expected = produced * responses.length;
  const waitUntil = now() + 30_000;
  while (delivered < expected && now() < waitUntil) await new Promise((resolve) => setTimeout(resolve, 50));
  channel.send({
    type: 'result',
    delivered,
    elapsedMs: last - started,
    latency: summarize(latencies.view()),
    connected: responses.length,
    failed,
    cpuMs: cpuMs(process.cpuUsage(cpuBefore)),
  });
  for (const res of responses) res.destroy();
  agent.destroy();
}

async function gateway(): Promise<void> {
  const command = `node bench/north-sse-fanout.ts --connections ${connections} --rate ${rate} --seconds ${seconds} --size ${size} --workers ${workers}`;
  printEnvironment(command);
  const rows = await withBroker(5 * 60_000, async (cluster) => {
    const topic = `north-sse-${Date.now()}`;
    await cluster.createTopic(topic, { partitions: PARTITIONS });
    const gw = await startGateway(
      'north-sse',
      [
        '  north_tcp: { type: tcp, kind: server, options: { host: 127.0.0.1, port: 0 }, exit: north_http }',
        '  north_http: { type: http, kind: server, exit: north_sse }',
        '  north_sse: { type: sse, kind: server, exit: north_sse_kafka }',
        '  north_sse_kafka:',
        '    type: sse-kafka',
        '    kind: proxy',
        '    routes:',
        `      - { when: [{ path: /events/fanout }], exit: cache_client, with: { topic: ${topic} } }`,
        '  cache_client: { type: kafka, kind: cache_client, exit: cache_server }',
        `  cache_server: { type: kafka, kind: cache_server, options: { bootstrap: [${topic}] }, exit: south }`,
        `  south: { type: kafka, kind: client, options: { servers: ["${cluster.bootstrap}"] } }`,
      ],
      { workers },
    );
    const rss = sampleRss();
    const child = new LoadProcess<Up, Down>(import.meta.filename, [
      ...['--connections', String(connections), '--rate', String(rate), '--seconds', String(seconds)],
      ...[
        '--size',
        String(size),
        '--port',
        String(gw.port),
        '--bootstrap',
        cluster.bootstrap,
        '--topic',
        topic,
      ],
    ]);
    try {
      const connected = await child.next();
      if (connected.type !== 'connected') throw new Error('unexpected message from the load process');
      console.error(`connected: ${connected.connected}`);
      // Lets every stream reach the live position before the clock starts.
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      const rssIdle = process.memoryUsage().rss;
      const before = await kgateFetches(gw.engine);
      const cpuBefore = process.cpuUsage();
      child.send({ type: 'go' });
      const result = await child.next();
      if (result.type !== 'result') throw new Error('unexpected message from the load process');
      const cpu = cpuMs(process.cpuUsage(cpuBefore));
      const fetches = (await kgateFetches(gw.engine)) - before;
      return [
        [
          `${fmt(result.connected)} SSE connections (${fmt(result.failed)} failed)`,
          `${fmt(result.delivered)} / ${fmt(produced * result.connected)}`,
          fmt(result.delivered / (result.elapsedMs / 1000)),
          ms(result.latency.p50),
          ms(result.latency.p99),
          ms(result.latency.max),
          fmt(fetches),
          `${fmt(rssIdle / MiB)} / ${fmt(rss.peak() / MiB)}`,
          `${fmt(cpu / result.elapsedMs, 2)} / ${fmt(result.cpuMs / result.elapsedMs, 2)}`,
        ],
      ];
    } finally {
      rss.stop();
      await child.close();
      await gw.stop();
    }
  });
  console.log(`\n${fmt(produced)} messages of ${size} B at ${fmt(rate)}/s over ${PARTITIONS} partitions`);
  printTable(
    [
      'clients',
      'events delivered / expected',
      'events/s',
      'p50 ms',
      'p99 ms',
      'max ms',
      'broker Fetch requests',
      'kgate RSS MiB idle / peak',
      'CPU cores kgate / load',
    ],
    rows,
  );
  console.log(`load average at end: ${loadAverage()}`);
}

if (args.role === 'load') await load();
else await gateway();
