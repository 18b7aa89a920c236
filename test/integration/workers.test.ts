import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { composition } from '../../src/bindings/index.ts';
import type { CacheClientBinding } from '../../src/bindings/kafka/cache_client/index.ts';
import { kafkaCacheThreads } from '../../src/bindings/kafka/threads/index.ts';
import { CacheHost } from '../../src/bindings/kafka/threads/cache-host.ts';
import { startKafka, type KafkaCluster } from '../../src/embedded/kafka/index.ts';
import { startGateway, type Running } from '../../src/engine/runtime.ts';
import { reservePort } from '../support/ports.ts';
import { openEventStream } from '../support/event-stream.ts';

// kgate with two worker threads beside the main thread, in front of a real broker: connections
// spread over the threads, and a stream served by any of them sees every message exactly once.

const TOPIC = 'fanout';
const CONNECTIONS = 40;

let kafka: KafkaCluster;
let dir: string;
let port: number;
let running: Running;

before(async () => {
  kafka = await startKafka();
  await kafka.createTopic(TOPIC, { partitions: 2 });
  dir = await mkdtemp(join(tmpdir(), 'kgate-workers-it-'));
  port = await reservePort();
  const file = join(dir, 'kgate.yaml');
  await writeFile(
    file,
    `
name: workers-it
bindings:
  tcp:
    type: tcp
    kind: server
    options: { host: 127.0.0.1, port: ${port} }
    exit: http
  http:
    type: http
    kind: server
    routes:
      - when: [{ headers: { ":path": "/events" } }]
        exit: sse
    exit: rest
  sse: { type: sse, kind: server, exit: events }
  events:
    type: sse-kafka
    kind: proxy
    routes:
      - when: [{ path: /events }]
        exit: north
        with: { topic: ${TOPIC} }
  rest:
    type: http-kafka
    kind: proxy
    routes:
      - when: [{ method: PUT, path: "/items/{id}" }]
        exit: north
        with: { capability: produce, topic: ${TOPIC}, key: "\${params.id}" }
  north:
    type: kafka
    kind: cache_client
    options: { topics: [{ name: ${TOPIC}, defaultOffset: historical }] }
    exit: cache
  cache: { type: kafka, kind: cache_server, exit: south }
  south: { type: kafka, kind: client, options: { servers: ["${kafka.bootstrap}"] } }
`,
  );
  running = await startGateway({
    configFile: file,
    composition,
    logger: pino({ level: process.env['KGATE_TEST_LOG'] ?? 'silent' }),
    stateDir: join(dir, 'cache'),
    workers: 2,
    env: {},
  });
});

after(async () => {
  await running?.stop(5_000);
  await kafka?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

async function put(id: string, body: string): Promise<number> {
  const req = httpRequest({
    host: '127.0.0.1',
    port,
    path: `/items/${id}`,
    method: 'PUT',
    agent: false,
    headers: { 'content-type': 'text/plain' },
  });
  req.end(body);
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  res.resume();
  return res.statusCode ?? 0;
}

describe('worker threads', { timeout: 120_000 }, () => {
  it('spread connections over the threads, each stream getting every message once', async () => {
    const streams = await Promise.all(
      Array.from({ length: CONNECTIONS }, () => openEventStream(port, '/events')),
    );
    try {
      const pool = running.workers;
      assert.ok(pool !== undefined);
      // The main thread's end of each worker's cache port, which counts what the worker asked.
      const hosts = pool.hosts(kafkaCacheThreads.name).filter((host) => host instanceof CacheHost);
      const produceRequests = (): number => hosts.reduce((sum, host) => sum + host.produceRequests, 0);
      const values = Array.from({ length: 20 }, (_, i) => `m${i}`);
      await kafka.produce(
        TOPIC,
        values.map((value, i) => ({ key: `k${i}`, value, partition: i % 2 })),
      );
      await Promise.all(streams.map((s) => s.waitFor(values.length, 30_000)));
      // Every stream is open and attached now: those not on the main thread are on a worker.
      const onMain = (running.engine.binding('north') as CacheClientBinding).streamCount;
      const perWorker = hosts.map((host) => host.attachments);
      const serving = (onMain > 0 ? 1 : 0) + perWorker.filter((n) => n > 0).length;
      assert.ok(onMain < CONNECTIONS, `the main thread took all ${onMain} streams`);
      assert.ok(serving >= 2, `streams on main ${onMain}, worker attachments ${perWorker.join(',')}`);

      // PUTs on fresh connections until one went through a worker (each has a 2 in 3 chance).
      const before = produceRequests();
      const putValues: string[] = [];
      for (let i = 0; i < 30 && produceRequests() === before; i++) {
        const value = `put${i}`;
        const status = await put(`p${i}`, value);
        assert.ok(status >= 200 && status < 300, `PUT answered ${status}`);
        putValues.push(value);
      }
      assert.ok(produceRequests() > before, 'no PUT went through a worker');

      const expected = [...values, ...putValues].sort();
      await Promise.all(streams.map((s) => s.waitFor(expected.length, 30_000)));
      // Anything duplicated would arrive within this pause.
      await new Promise((resolve) => setTimeout(resolve, 300));
      for (const s of streams) assert.deepEqual(s.events.map((e) => e.data).sort(), expected);
    } finally {
      for (const s of streams) s.close();
    }
  });
});
