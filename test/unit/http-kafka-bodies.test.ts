import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { connect as http2Connect, type ClientHttp2Session } from 'node:http2';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { HttpKafkaProxyBinding } from '../../src/bindings/http-kafka/proxy.ts';
import { HttpServerBinding } from '../../src/bindings/http/server.ts';
import { StagingBudget } from '../../src/bindings/kafka/cache_client/index.ts';
import type { RouteConfig } from '../../src/config/index.ts';
import { closeFakeTopics, FakeCacheServer, FakeTopic, fakeCacheClient } from '../support/fake-cache.ts';

// Request bodies that stop arriving, through the http server binding (HTTP/1.1 and HTTP/2 on a
// loopback listener) into the http-kafka proxy over a fake cache whose streams share one staging
// budget: a stalled body is answered 408 within the body timeouts and gives its staged bytes
// back, time spent waiting for budget does not count against it, and the bodies of one
// connection cannot take more than its share of the budget.

const LIMIT = 64 * 1024;
const BUDGET = 256 * 1024;
const SHARE = 96 * 1024;
const IDLE_S = 0.4;

const uploads = new FakeTopic('uploads', { partitions: 1, config: { maxMessageBytes: LIMIT } });
const cache = new FakeCacheServer(uploads);
const routes: RouteConfig[] = [
  {
    when: [{ method: 'PUT', path: '/uploads/{id}' }],
    exit: 'north',
    with: { capability: 'produce', topic: 'uploads', key: '${params.id}' },
  },
];

/** The http server and the http-kafka proxy over the fake cache, on a loopback listener. */
interface Gateway {
  readonly port: number;
  readonly metrics: Registry;
  stop(): Promise<void>;
}

async function startGateway(timeouts: Record<string, number>, staging: StagingBudget): Promise<Gateway> {
  const metrics = new Registry();
  const proxy = new HttpKafkaProxyBinding({
    config: { name: 'rest', type: 'http-kafka', kind: 'proxy', options: {}, routes },
    logger: pino({ level: 'silent' }),
    metrics,
    stateDir: '/nonexistent',
    lookup: () => fakeCacheClient('north', cache, staging),
  });
  const http = new HttpServerBinding({
    config: { name: 'http', type: 'http', kind: 'server', options: { timeouts }, routes: [], exit: 'rest' },
    logger: pino({ level: 'silent' }),
    metrics,
    stateDir: '/nonexistent',
    lookup: () => proxy,
  });
  await proxy.start(AbortSignal.timeout(1_000));
  await http.start(AbortSignal.timeout(1_000));
  const listener = createServer((socket) =>
    http.acceptConnection(socket, { localPort: 0, remoteAddress: '127.0.0.1', remotePort: 0 }),
  );
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  return {
    port: (listener.address() as AddressInfo).port,
    metrics,
    async stop() {
      listener.close();
      await http.stop(AbortSignal.timeout(2_000));
      await proxy.stop(AbortSignal.timeout(1_000));
    },
  };
}

const staging = new StagingBudget(BUDGET, SHARE);
let gateway: Gateway;
let port: number;
let metrics: Registry;

before(async () => {
  gateway = await startGateway({ 'body-idle': IDLE_S, body: 3 }, staging);
  ({ port, metrics } = gateway);
});

after(async () => {
  await gateway.stop();
  await closeFakeTopics();
});

interface Answer {
  readonly head: string;
  readonly status: number;
  readonly body: string;
  readonly ms: number;
}

/** A PUT over its own connection announcing `announced` bytes and sending `parts`, `gapMs` apart. */
function put(
  id: string,
  announced: number,
  parts: readonly Buffer[],
  gapMs = 0,
  to = port,
): { answer: Promise<Answer>; socket: Socket } {
  const socket = connect(to, '127.0.0.1');
  socket.on('error', () => undefined);
  const began = performance.now();
  socket.write(`PUT /uploads/${id} HTTP/1.1\r\nHost: kgate\r\nContent-Length: ${announced}\r\n\r\n`);
  void (async () => {
    for (const part of parts) {
      if (socket.destroyed) return;
      socket.write(part);
      if (gapMs > 0) await new Promise((resolve) => setTimeout(resolve, gapMs));
    }
  })();
  const answer = new Promise<Answer>((resolve) => {
    let text = '';
    const settle = (): void => {
      const at = text.indexOf('\r\n\r\n');
      resolve({
        head: at < 0 ? text : text.slice(0, at),
        status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0),
        body: at < 0 ? '' : text.slice(at + 4),
        ms: performance.now() - began,
      });
    };
    socket.setEncoding('latin1').on('data', (chunk: string) => {
      text += chunk;
      // A whole answer: its head, and as much body as it announced.
      const at = text.indexOf('\r\n\r\n');
      const length = Number(/\r\ncontent-length: (\d+)/i.exec(text)?.[1] ?? 0);
      if (at >= 0 && text.length - at - 4 >= length) settle();
    });
    socket.once('close', settle);
  });
  return { answer, socket };
}

async function until(what: string, done: () => boolean, ms = 5_000): Promise<void> {
  const by = Date.now() + ms;
  while (!done()) {
    if (Date.now() > by) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function rejections(reason: string, registry = metrics): Promise<number> {
  const text = await registry.getSingleMetricAsString('kgate_http_server_requests_rejected_total');
  const line = text.split('\n').find((l) => l.includes(`reason="${reason}"`));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

describe('request bodies that stop arriving', { timeout: 20_000 }, () => {
  it('answers a body that sends nothing for the idle timeout 408, closes its connection and gives its staged bytes back', async () => {
    const before = await rejections('body_idle_timeout');
    const { answer } = put('stalled', 50_000, [Buffer.alloc(40_000)]);
    await until('the body to be staged', () => staging.usedBytes >= 40_000);
    const got = await answer;
    assert.equal(got.status, 408, got.head);
    assert.match(got.head, /\r\nConnection: close/i);
    assert.match(got.body, /request body: nothing arrived for 0\.4 s \(after 40000 bytes\)/);
    assert.ok(got.ms >= IDLE_S * 1000 && got.ms < IDLE_S * 1000 + 2_000, `answered after ${got.ms} ms`);
    assert.equal(staging.usedBytes, 0);
    assert.equal(staging.accounts, 0);
    assert.equal(cache.produced.length, 0);
    assert.equal(await rejections('body_idle_timeout'), before + 1);
  });

  it('answers a body that trickles past its deadline 408, though no gap reaches the idle timeout', async () => {
    const parts = Array.from({ length: 40 }, () => Buffer.alloc(1, 0x61));
    const { answer } = put('trickle', 40, parts, 150);
    const got = await answer;
    assert.equal(got.status, 408, got.head);
    assert.match(got.body, /request body: not complete within 3 s/);
    assert.ok(got.ms >= 3_000 && got.ms < 5_000, `answered after ${got.ms} ms`);
    assert.equal(staging.usedBytes, 0);
    assert.ok((await rejections('body_timeout')) >= 1);
  });

  it('does not count the time a body waits for staging budget against it', async () => {
    // An older message of another producer holds nearly all the budget and stays open.
    const holder = await fakeCacheClient('north', cache, staging).open('uploads', {
      capabilities: 'produce',
    });
    const held = Array.from({ length: 4 }, (_, i) => holder.produceStream({ key: `holder-${i}` }));
    for (const message of held) assert.equal(message.write(Buffer.alloc(60_000)), true);
    const waitsBefore = staging.waits;
    const { answer, socket } = put('patient', 50_000, [Buffer.alloc(50_000)]);
    await until('the body to wait for room', () => staging.waits > waitsBefore);
    // Far past the idle timeout, with the body unread because kgate holds it back.
    await new Promise((resolve) => setTimeout(resolve, IDLE_S * 1000 * 3));
    for (const message of held) message.abort();
    holder.close();
    const got = await answer;
    assert.equal(got.status, 204, got.head);
    socket.destroy();
    const produced = cache.produced.splice(0);
    assert.equal(produced.length, 1);
    assert.equal((produced[0]?.records[0]?.value as Buffer).length, 50_000);
  });
});

describe('stalled bodies while others wait for the staging budget', { timeout: 20_000 }, () => {
  it('gives up bodies that stall while another waits, long before the idle timeout, and serves the one waiting', async () => {
    // No share per connection, a 20 s idle timeout: only the budget's pressure can help here.
    const budget = new StagingBudget(BUDGET, BUDGET, 300);
    const pressed = await startGateway({ 'body-idle': 20 }, budget);
    const stalled: { answer: Promise<Answer>; socket: Socket }[] = [];
    try {
      for (let i = 0; i < 4; i++)
        stalled.push(put(`stalled-${i}`, 62_000, [Buffer.alloc(60_000)], 0, pressed.port));
      await until('the stalled bodies to fill the budget', () => budget.usedBytes >= 240_000);
      // Idle for longer than the pressure's 300 ms, but nobody waited: they are kept.
      await new Promise((resolve) => setTimeout(resolve, 600));
      assert.equal(budget.usedBytes, 240_000);
      const began = performance.now();
      const other = put('waiting', 60_000, [Buffer.alloc(60_000)], 0, pressed.port);
      const got = await other.answer;
      other.socket.destroy();
      assert.equal(got.status, 204, got.head);
      assert.ok(performance.now() - began < 2_000, `answered after ${performance.now() - began} ms`);
      for (const { answer } of stalled.slice(0, 3)) {
        const refused = await answer;
        assert.equal(refused.status, 408, refused.head);
        assert.match(
          refused.body,
          /nothing arrived for 0\.3 s \(after 60000 bytes\) while other requests waited/,
        );
      }
      assert.ok((await rejections('body_stalled', pressed.metrics)) >= 3);
      assert.ok(cache.produced.some((p) => p.records[0]?.key === 'waiting'));
    } finally {
      for (const { socket } of stalled) socket.destroy();
      await pressed.stop();
      cache.produced.splice(0);
    }
    await until('every staged byte to be given back', () => budget.usedBytes === 0);
  });
});

describe('request bodies past the topic limit', { timeout: 20_000 }, () => {
  it('answers a chunked body 413 at the chunk that crosses the limit, on a connection then closed', async () => {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.write('PUT /uploads/chunked HTTP/1.1\r\nHost: kgate\r\nTransfer-Encoding: chunked\r\n\r\n');
    const chunk = Buffer.alloc(16 * 1024, 0x61);
    for (let i = 0; i < 5; i++) socket.write(`${chunk.length.toString(16)}\r\n${chunk.toString()}\r\n`);
    let text = '';
    socket.setEncoding('latin1').on('data', (data: string) => (text += data));
    await once(socket, 'close');
    assert.match(text, /^HTTP\/1\.1 413 Payload Too Large\r\n/);
    assert.match(text, /\r\nConnection: close\r\n/i);
    assert.match(text, /more than its max\.message\.bytes \(65536\)/);
    assert.equal(staging.usedBytes, 0);
    assert.equal(cache.produced.length, 0);
  });
});

describe("one connection's bodies and the staging budget", { timeout: 20_000 }, () => {
  async function h2(): Promise<ClientHttp2Session> {
    const session = http2Connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
    await once(session, 'connect');
    return session;
  }

  it('holds the stalled bodies of one HTTP/2 connection to its share, and serves other connections meanwhile', async () => {
    // A long idle timeout and no pressure: only the connection's share keeps the budget free.
    const budget = new StagingBudget(BUDGET, SHARE, 60_000);
    const shared = await startGateway({ 'body-idle': 20 }, budget);
    const session = http2Connect(`http://127.0.0.1:${shared.port}`);
    session.on('error', () => undefined);
    try {
      await once(session, 'connect');
      for (let i = 0; i < 10; i++) {
        const stream = session.request({
          ':method': 'PUT',
          ':path': `/uploads/h2-${i}`,
          'content-length': String(60_000),
        });
        stream.on('error', () => undefined);
        stream.write(Buffer.alloc(50_000));
      }
      // All ten have arrived (the connection's share holds back all but the first two).
      await until('the connection to reach its share', () => budget.ownerWaits >= 8);
      assert.ok(budget.usedBytes <= SHARE, `staged ${budget.usedBytes} bytes`);
      // Another client is served at once, long before the stalled ones' idle timeout.
      const other = put('other', 30_000, [Buffer.alloc(30_000)], 0, shared.port);
      const got = await other.answer;
      other.socket.destroy();
      assert.equal(got.status, 204, got.head);
      assert.ok(got.ms < 5_000, `answered after ${got.ms} ms`);
      // The connection goes: what its bodies staged is given back.
      session.destroy();
      await until('the staged bytes to be given back', () => budget.usedBytes === 0 && budget.accounts === 0);
    } finally {
      session.destroy();
      await shared.stop();
      cache.produced.splice(0);
    }
  });

  it('gives back the staged bytes of an HTTP/2 connection that goes away', async () => {
    const session = await h2();
    for (let i = 0; i < 3; i++) {
      const stream = session.request({
        ':method': 'PUT',
        ':path': `/uploads/gone-${i}`,
        'content-length': '60000',
      });
      stream.on('error', () => undefined);
      stream.write(Buffer.alloc(20_000));
    }
    await until('the bodies to be staged', () => staging.usedBytes >= 40_000);
    session.destroy();
    await until('the staged bytes to be given back', () => staging.usedBytes === 0 && staging.accounts === 0);
    assert.equal(cache.produced.length, 0);
  });
});
