import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { HttpKafkaProxyBinding } from '../../src/bindings/http-kafka/proxy.ts';
import { HttpServerBinding } from '../../src/bindings/http/server.ts';
import type { RouteConfig } from '../../src/config/index.ts';
import { closeFakeTopics, FakeCacheServer, FakeTopic, fakeCacheClient } from '../support/fake-cache.ts';
import { until } from '../support/until.ts';

// The http server and http-kafka proxy bindings over loopback TCP, against fake topics: what a
// client that parks many waits, or does not read what it asked for, costs the gateway, without a
// broker. The full-size figures are measured by bench/hostile-clients.ts (docs/security.md).

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

after(closeFakeTopics);

const MiB = 1024 * 1024;

/** Heap and Buffer memory after a full collection. */
function settled(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

/** The highest heap and Buffer memory seen until stopped, sampled every few milliseconds. */
function peak(): { stop(): number } {
  let high = 0;
  const sample = (): void => {
    const m = process.memoryUsage();
    high = Math.max(high, m.heapUsed + m.external);
  };
  sample();
  const timer = setInterval(sample, 5);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return high;
    },
  };
}

/** A compacted topic whose merged document is about `bytes` long. */
function documentTopic(name: string, bytes: number): FakeTopic {
  const topic = new FakeTopic(name, { partitions: 2, compacted: true });
  const pad = 'x'.repeat(980);
  for (let i = 0; i * 1000 < bytes; i++) topic.put(i % 2, `k${i}`, JSON.stringify({ i, pad }));
  return topic;
}

interface Gateway {
  readonly port: number;
  readonly registry: Registry;
  close(): Promise<void>;
}

async function gateway(
  topics: FakeTopic[],
  routes: RouteConfig[],
  options: Record<string, unknown> = {},
): Promise<Gateway> {
  const registry = new Registry();
  const cache = new FakeCacheServer(...topics);
  const logger = pino({ level: 'silent' });
  const proxy = new HttpKafkaProxyBinding({
    config: { name: 'rest', type: 'http-kafka', kind: 'proxy', options, routes },
    logger,
    metrics: registry,
    stateDir: '/nonexistent',
    lookup: () => fakeCacheClient('north', cache),
  });
  await proxy.start(AbortSignal.timeout(1_000));
  const http = new HttpServerBinding({
    config: { name: 'http', type: 'http', kind: 'server', options: {}, routes: [], exit: 'rest' },
    logger,
    metrics: registry,
    stateDir: '/nonexistent',
    lookup: () => proxy,
  });
  await http.start(AbortSignal.timeout(1_000));
  const listener: Server = createServer((socket) =>
    http.acceptConnection(socket, {
      localPort: socket.localPort ?? 0,
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
    }),
  );
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const address = listener.address();
  assert.ok(address !== null && typeof address === 'object');
  return {
    port: address.port,
    registry,
    async close() {
      listener.close();
      await http.stop(AbortSignal.timeout(2_000));
      await proxy.stop(AbortSignal.timeout(2_000));
    },
  };
}

async function metric(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const found = registry.getSingleMetric(name);
  assert.ok(found !== undefined, `metric ${name}`);
  const { values } = await found.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, value]) => v.labels[k] === value))
    .reduce((sum, v) => sum + v.value, 0);
}

interface Answer {
  readonly status: number;
  readonly head: string;
  readonly bytes: number;
}

/**
 * One request on a connection of its own, the answer counted and dropped as it arrives (a test
 * keeping 200 copies of a document would measure itself). `read: false` reads nothing at all.
 */
function ask(port: number, head: string, read = true): { socket: Socket; answer: Promise<Answer> } {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  const answer = new Promise<Answer>((resolve) => {
    let text = '';
    let bytes = 0;
    socket.on('data', (chunk: Buffer) => {
      if (text.length < 2048) text += chunk.toString('latin1', 0, Math.min(chunk.length, 2048));
      bytes += chunk.length;
    });
    socket.on('close', () =>
      resolve({ status: Number(text.slice(9, 12)), head: text.split('\r\n\r\n')[0] ?? '', bytes }),
    );
  });
  socket.write(`${head}Host: t\r\nConnection: close\r\n\r\n`);
  if (!read) socket.pause();
  return { socket, answer };
}

const docRoute = (path: string, topic: string): RouteConfig => ({
  when: [{ method: 'GET', path }],
  exit: 'north',
  with: { capability: 'fetch', topic, merge: { 'content-type': 'application/json' } },
});

describe('http-kafka fetches under load, through the http server', () => {
  it('reads a merged document once for 200 waiters woken by one write, and shares it', async () => {
    const topic = documentTopic('waited', MiB);
    const gw = await gateway([topic], [docRoute('/doc', 'waited')]);
    try {
      const first = ask(gw.port, 'GET /doc HTTP/1.1\r\n');
      const etag = /^etag: (.*)$/im.exec((await first.answer).head)?.[1];
      assert.ok(etag !== undefined);
      const base = settled();
      const reads = await metric(gw.registry, 'kgate_http_kafka_snapshot_reads_total');
      const waiters = Array.from({ length: 200 }, () =>
        ask(gw.port, `GET /doc HTTP/1.1\r\nIf-None-Match: ${etag}\r\nPrefer: wait=20\r\n`),
      );
      await until(
        '200 waits parked',
        async () => (await metric(gw.registry, 'kgate_http_kafka_waits')) === 200,
      );
      const high = peak();
      topic.put(0, 'k0', '{"changed":true}');
      const answers = await Promise.all(waiters.map((w) => w.answer));
      const heapDelta = high.stop() - base;
      assert.deepEqual(new Set(answers.map((a) => a.status)), new Set([200]));
      assert.equal(new Set(answers.map((a) => a.bytes)).size, 1, 'every waiter got the same document');
      assert.equal((await metric(gw.registry, 'kgate_http_kafka_snapshot_reads_total')) - reads, 1);
      assert.equal(await metric(gw.registry, 'kgate_http_kafka_snapshots_shared_total'), 199);
      // Built per waiter, the documents alone would take 200 MiB, and their building several times
      // that when the reads overlap; the bound leaves room for the clients' own garbage.
      assert.ok(heapDelta < 128 * MiB, `heap grew by ${Math.round(heapDelta / MiB)} MiB`);
    } finally {
      await gw.close();
    }
  });

  it('answers 503 with Retry-After past limits.waits and limits.snapshot-reads; a request joins a read in progress', async () => {
    const slow = new FakeTopic('slow', { partitions: 1 });
    slow.put(0, 'a', '"a"');
    const quick = documentTopic('quick', 10_000);
    const gw = await gateway(
      [slow, quick],
      [
        docRoute('/slow', 'slow'),
        docRoute('/quick', 'quick'),
        {
          when: [{ method: 'GET', path: '/slow/{id}' }],
          exit: 'north',
          with: { capability: 'fetch', topic: 'slow', filters: [{ key: '${params.id}' }] },
        },
      ],
      { limits: { waits: 2, 'snapshot-reads': 1 } },
    );
    try {
      const etag = /^etag: (.*)$/im.exec((await ask(gw.port, 'GET /quick HTTP/1.1\r\n').answer).head)?.[1];
      assert.ok(etag !== undefined);
      const wait = `GET /quick HTTP/1.1\r\nIf-None-Match: ${etag}\r\nPrefer: wait=20\r\n`;
      const parked = [ask(gw.port, wait), ask(gw.port, wait)];
      await until('2 waits parked', async () => (await metric(gw.registry, 'kgate_http_kafka_waits')) === 2);
      const refused = await ask(gw.port, wait).answer;
      assert.equal(refused.status, 503);
      assert.match(refused.head, /^retry-after: 1$/im);
      assert.match(refused.head, /^HTTP\/1\.1 503 /);
      quick.put(1, 'k1', '{"changed":true}');
      assert.deepEqual(
        (await Promise.all(parked.map((p) => p.answer))).map((a) => a.status),
        [200, 200],
      );

      // The cache lags the broker: a read of /slow holds until it catches up.
      slow.behind(0, 2n);
      const reading = ask(gw.port, 'GET /slow HTTP/1.1\r\n');
      await until(
        'a read in progress',
        async () => (await metric(gw.registry, 'kgate_http_kafka_snapshot_reads')) === 1,
      );
      const joined = ask(gw.port, 'GET /slow HTTP/1.1\r\n');
      const other = await ask(gw.port, 'GET /slow/a HTTP/1.1\r\n').answer;
      assert.equal(other.status, 503);
      assert.match(other.head, /^retry-after: 1$/im);
      slow.put(0, 'b', '"b"');
      const [one, two] = await Promise.all([reading.answer, joined.answer]);
      assert.equal(one?.status, 200);
      assert.equal(two?.status, 200);
      assert.equal(await metric(gw.registry, 'kgate_http_kafka_limited_total', { limit: 'waits' }), 1);
      assert.equal(
        await metric(gw.registry, 'kgate_http_kafka_limited_total', { limit: 'snapshot-reads' }),
        1,
      );
    } finally {
      await gw.close();
    }
  });

  it('holds one document for 20 connections that read nothing, and lets go of it once they close', async () => {
    // Larger than what the kernel takes into a loopback socket that is not read (about 4 MiB), so
    // each answer would stay in the gateway's memory.
    const size = 8 * MiB;
    const topic = documentTopic('unread', size);
    const gw = await gateway([topic], [docRoute('/doc', 'unread')]);
    try {
      await ask(gw.port, 'GET /doc HTTP/1.1\r\n').answer;
      const base = settled();
      const clients = Array.from({ length: 20 }, () => ask(gw.port, 'GET /doc HTTP/1.1\r\n', false));
      await until('every request answering', async () => {
        const answering =
          (await metric(gw.registry, 'kgate_http_kafka_snapshots_shared_total')) +
          (await metric(gw.registry, 'kgate_http_kafka_snapshot_reads_total'));
        return answering >= 21;
      });
      const held = settled() - base;
      // Each answer would hold its own copy of the document until its client read it.
      assert.ok(held < 2 * size, `${Math.round(held / MiB)} MiB held for 20 unread answers`);
      for (const client of clients) client.socket.destroy();
      await Promise.all(clients.map((c) => c.answer));
      await until(
        'the server saw every connection close',
        async () => (await metric(gw.registry, 'kgate_http_server_connections')) === 0,
      );
      const after = settled() - base;
      assert.ok(after < 2 * MiB, `${Math.round(after / MiB)} MiB still held after the clients closed`);
      assert.equal(topic.released, topic.attached, 'every attachment released');
      assert.equal(topic.listeners, 0, 'no stream left listening');
    } finally {
      await gw.close();
    }
  });
});
