import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { HttpServerBinding } from '../../src/bindings/http/server.ts';
import type { CacheMessage } from '../../src/bindings/kafka/cache_client/index.ts';
import { compileEventId } from '../../src/bindings/sse-kafka/event-id.ts';
import { frameOf, largeEventPieces, SseKafkaProxyBinding } from '../../src/bindings/sse-kafka/proxy.ts';
import { SseServerBinding } from '../../src/bindings/sse/server.ts';
import { closeFakeTopics, FakeCacheServer, FakeTopic, fakeCacheClient } from '../support/fake-cache.ts';
import { until } from '../support/until.ts';

// Event streams of large values to clients that read nothing, through the http server, sse server
// and sse-kafka proxy bindings over loopback TCP, against a fake topic: what each such stream
// costs the gateway. The full-size figures are measured by bench/hostile-clients.ts.

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

after(closeFakeTopics);

const MiB = 1024 * 1024;

function settled(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

async function metric(registry: Registry, name: string): Promise<number> {
  const found = registry.getSingleMetric(name);
  assert.ok(found !== undefined, `metric ${name}`);
  return (await found.get()).values.reduce((sum, v) => sum + v.value, 0);
}

function message(value: Buffer | null, key = 'k'): CacheMessage {
  return {
    partition: 0,
    offset: 4n,
    timestamp: 0,
    key: Buffer.from(key),
    value,
    headers: [],
    filters: 0,
    progress: new Map([[0, 5n]]),
  };
}

describe('sse-kafka with large values', () => {
  it('frames a large event as frameOf does, sending a one-line UTF-8 value as it is', () => {
    const format = compileEventId('["${base64(key)}","${etag}"]');
    const big = 'é'.repeat(40_000);
    for (const value of [
      Buffer.from(`{"a":"${big}"}`),
      Buffer.from(`two\r\nlines ${big}\rand\nmore`),
      Buffer.concat([Buffer.from(big), Buffer.from([0xff, 0xfe])]),
      null,
    ]) {
      const m = message(value);
      const pieces = largeEventPieces(m, format);
      assert.equal(Buffer.concat(pieces.map((p) => Buffer.from(p))).toString('utf8'), frameOf(m, format));
    }
    const shared = Buffer.from(`{"v":"${big}"}`);
    assert.ok(largeEventPieces(message(shared), format).includes(shared), 'the value itself is sent');
  });

  it('holds the 1 MiB per-stream bound for 40 streams of 1 MB values that read nothing', async () => {
    const topic = new FakeTopic('large');
    const value = 'v'.repeat(1_000_000);
    for (let i = 0; i < 10; i++) topic.put(0, `k${i}`, value);
    const registry = new Registry();
    const logger = pino({ level: 'silent' });
    const cache = new FakeCacheServer(topic);
    const context = { logger, metrics: registry, stateDir: '/nonexistent' };
    const proxy = new SseKafkaProxyBinding({
      ...context,
      config: {
        name: 'events',
        type: 'sse-kafka',
        kind: 'proxy',
        options: {},
        routes: [{ when: [{ path: '/events' }], exit: 'north', with: { topic: 'large' } }],
      },
      lookup: () => fakeCacheClient('north', cache),
    });
    const sse = new SseServerBinding({
      ...context,
      config: { name: 'sse', type: 'sse', kind: 'server', options: {}, routes: [], exit: 'events' },
      lookup: () => proxy,
    });
    const http = new HttpServerBinding({
      ...context,
      config: { name: 'http', type: 'http', kind: 'server', options: {}, routes: [], exit: 'sse' },
      lookup: () => sse,
    });
    for (const binding of [proxy, sse, http]) await binding.start(AbortSignal.timeout(1_000));
    const listener: Server = createServer((socket) =>
      http.acceptConnection(socket, { localPort: 0, remoteAddress: '127.0.0.1', remotePort: 0 }),
    );
    listener.listen(0, '127.0.0.1');
    await once(listener, 'listening');
    const address = listener.address();
    assert.ok(address !== null && typeof address === 'object');
    const clients: Socket[] = [];
    try {
      const base = settled();
      for (let i = 0; i < 40; i++) {
        const socket = connect(address.port, '127.0.0.1');
        socket.on('error', () => undefined);
        socket.write('GET /events HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n');
        socket.pause();
        clients.push(socket);
      }
      await until('40 streams open', async () => (await metric(registry, 'kgate_sse_kafka_streams')) === 40);
      // Each stream sends until its socket stops taking bytes: about 4 MiB of its 10 MB, on loopback.
      let sent = -1;
      await until('every stream stalled', async () => {
        const now = await metric(registry, 'kgate_sse_sent_bytes_total');
        const still = now === sent;
        sent = now;
        if (!still) await new Promise((resolve) => setTimeout(resolve, 100));
        return still;
      });
      const perStream = (settled() - base) / 40;
      assert.ok(perStream < MiB, `${Math.round(perStream / 1024)} KiB held per unread stream`);
    } finally {
      for (const socket of clients) socket.destroy();
      listener.close();
      await http.stop(AbortSignal.timeout(2_000));
      await sse.stop(AbortSignal.timeout(2_000));
      await proxy.stop(AbortSignal.timeout(2_000));
    }
  });
});
