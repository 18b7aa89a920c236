import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import { pino } from 'pino';
import { createCacheClientBinding } from '../../src/bindings/kafka/cache_client/index.ts';
import { createCacheServerBinding } from '../../src/bindings/kafka/cache_server/index.ts';
import { createKafkaClientBinding } from '../../src/bindings/kafka/client/index.ts';
import { createHttpServerBinding } from '../../src/bindings/http/server.ts';
import type { SseRequest, SseStream } from '../../src/bindings/north.ts';
import { SseKafkaProxyBinding } from '../../src/bindings/sse-kafka/proxy.ts';
import { createSseServerBinding } from '../../src/bindings/sse/server.ts';
import { createTcpServerBinding, type TcpServerBinding } from '../../src/bindings/tcp/server.ts';
import type { BindingConfig, LoadedConfig } from '../../src/config/index.ts';
import { startKafka, type KafkaCluster } from '../../src/embedded/kafka/index.ts';
import type { Binding } from '../../src/engine/binding.ts';
import { Engine } from '../../src/engine/engine.ts';
import { BindingRegistry } from '../../src/engine/registry.ts';

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed`;
const TOPIC = 'browser-events';

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>sse-kafka</title></head><body><script>
  window.received = [];
  window.opens = 0;
  const source = new EventSource('/events/${TOPIC}');
  source.onopen = () => { window.opens++; };
  source.onmessage = (e) => { window.received.push({ id: e.lastEventId, data: e.data }); };
</script></body></html>`;

interface Received {
  id: string;
  data: string;
}

let kafka: KafkaCluster;
let engine: Engine;
let stateDir: string;
const streams: SseStream[] = [];
const lastEventIds: (string | undefined)[] = [];

function config(name: string, type: string, kind: string, extra: Partial<BindingConfig> = {}): BindingConfig {
  return { name, type, kind, options: {}, routes: [], ...extra };
}

before(async () => {
  if (skip !== false) return;
  kafka = await startKafka();
  await kafka.createTopic(TOPIC, { partitions: 2 });
  stateDir = await mkdtemp(join(tmpdir(), 'kgate-sse-kafka-browser-'));
  const page = (ctx: { config: BindingConfig }): Binding =>
    Object.assign(
      {
        handleRequest(_req: IncomingMessage, res: ServerResponse): void {
          res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
          res.end(PAGE);
        },
      },
      { name: ctx.config.name, config: ctx.config, start: async () => {}, stop: async () => {} },
    );
  const registry = new BindingRegistry()
    .register('test', 'page', page)
    .register('tcp', 'server', createTcpServerBinding)
    .register('http', 'server', createHttpServerBinding)
    .register('sse', 'server', createSseServerBinding)
    // The proxy as built, with its streams kept so the test can end them from the server side.
    .register('sse-kafka', 'proxy', (ctx) => {
      const proxy = new SseKafkaProxyBinding(ctx);
      const serve = proxy.handleEventStream.bind(proxy);
      proxy.handleEventStream = (request: SseRequest, stream: SseStream) => {
        streams.push(stream);
        lastEventIds.push(request.lastEventId);
        return serve(request, stream);
      };
      return proxy;
    })
    .register('kafka', 'cache_client', createCacheClientBinding)
    .register('kafka', 'cache_server', createCacheServerBinding)
    .register('kafka', 'client', createKafkaClientBinding);
  const bindings: BindingConfig[] = [
    config('south', 'kafka', 'client', { options: { servers: [kafka.bootstrap] } }),
    config('cache', 'kafka', 'cache_server', { exit: 'south' }),
    config('north', 'kafka', 'cache_client', {
      exit: 'cache',
      options: { topics: [{ name: TOPIC, defaultOffset: 'historical' }] },
    }),
    config('events', 'sse-kafka', 'proxy', {
      routes: [{ when: [{ path: `/events/${TOPIC}` }], exit: 'north', with: { topic: TOPIC } }],
    }),
    config('sse', 'sse', 'server', { options: { retry: 100 }, exit: 'events' }),
    config('page', 'test', 'page'),
    config('http', 'http', 'server', {
      exit: 'page',
      routes: [{ when: [{ headers: { ':path': '/events/*' } }], exit: 'sse' }],
    }),
    config('tcp', 'tcp', 'server', { options: { host: '127.0.0.1', port: 0 }, exit: 'http' }),
  ];
  const loaded: LoadedConfig = {
    file: 'sse-kafka-browser.yaml',
    name: 'sse-kafka-browser',
    bindings: new Map(bindings.map((b) => [b.name, b])),
    warnings: [],
  };
  engine = new Engine(loaded, registry, {
    logger: pino({ level: process.env['KGATE_TEST_LOG'] ?? 'silent' }),
    stateDir,
  });
  await engine.start();
});

after(async () => {
  if (skip !== false) return;
  await engine?.stop(5_000);
  await kafka?.stop();
  if (stateDir !== undefined) await rm(stateDir, { recursive: true, force: true });
});

describe('sse-kafka proxy in a browser', { skip }, () => {
  it('delivers Kafka messages to EventSource and resumes after a server-side close without loss or duplicates', async () => {
    const port = (engine.binding('tcp') as TcpServerBinding).ports[0];
    assert.ok(port !== undefined);
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
      ],
    });
    try {
      const tab = await browser.newPage();
      const received = (): Promise<Received[]> =>
        tab.evaluate(() => (globalThis as unknown as { received: Received[] }).received);
      const waitFor = (count: number): Promise<unknown> =>
        tab.waitForFunction(
          (n) => (globalThis as unknown as { received: unknown[] }).received.length >= n,
          count,
          { timeout: 30_000 },
        );

      await kafka.produce(TOPIC, [
        { key: 'a', value: 'm1', partition: 0 },
        { key: 'b', value: 'm2', partition: 1 },
        { key: 'c', value: 'm3', partition: 0 },
      ]);
      await tab.goto(`http://127.0.0.1:${port}/`);
      await waitFor(3);

      // End the stream from the server side, then produce while the browser is away.
      for (const stream of streams) stream.close(500);
      await kafka.produce(TOPIC, [
        { key: 'd', value: 'm4', partition: 1 },
        { key: 'e', value: 'm5', partition: 0 },
      ]);
      await waitFor(5);
      await kafka.produce(TOPIC, [{ key: 'f', value: 'm6', partition: 1 }]);
      await waitFor(6);
      // Anything repeated would arrive right behind the rest.
      await new Promise((resolve) => setTimeout(resolve, 500));

      const got = await received();
      assert.deepEqual(got.map((e) => e.data).sort(), ['m1', 'm2', 'm3', 'm4', 'm5', 'm6']);
      assert.equal(await tab.evaluate(() => (globalThis as unknown as { opens: number }).opens), 2);
      assert.equal(lastEventIds.length, 2);
      assert.equal(lastEventIds[0], undefined);
      assert.equal(lastEventIds[1], got[2]?.id, 'the reconnect resumes from the last event seen');
    } finally {
      await browser.close();
    }
  });
});
