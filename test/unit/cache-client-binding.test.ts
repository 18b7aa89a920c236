import { strict as assert } from 'node:assert';
import { tmpdir } from 'node:os';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { CacheClientBinding, createCacheClientBinding } from '../../src/bindings/kafka/cache_client/index.ts';
import type { CacheServerApi, CachedTopic } from '../../src/bindings/kafka/cache_server/api.ts';
import type { BindingConfig } from '../../src/config/index.ts';
import type { Binding, BindingContext } from '../../src/engine/binding.ts';
import { StreamReader, values } from '../support/cache-stream.ts';
import { closeFakeTopics, FakeCacheServer, FakeTopic } from '../support/fake-cache.ts';

after(closeFakeTopics);

describe('cache_client binding', () => {
  function binding(config: Partial<BindingConfig>, bindings: Record<string, Binding>): CacheClientBinding {
    const context: BindingContext = {
      config: { name: 'cc', type: 'kafka', kind: 'cache_client', options: {}, routes: [], ...config },
      logger: pino({ level: 'silent' }),
      metrics: new Registry(),
      stateDir: tmpdir(),
      lookup(name) {
        const b = bindings[name];
        if (b === undefined) throw new Error(`unknown binding ${name}`);
        return b;
      },
    };
    const created = createCacheClientBinding(context);
    assert.ok(created instanceof CacheClientBinding);
    return created;
  }

  function serverBinding(name: string, server: FakeCacheServer): Binding & CacheServerApi {
    return Object.assign(server, {
      name,
      start: () => Promise.resolve(),
      stop: () => Promise.resolve(),
    });
  }

  it('routes topics to cache servers, applies per-topic defaultOffset, and closes streams on stop', async () => {
    const a = new FakeCacheServer();
    const b = new FakeCacheServer();
    const ta = new FakeTopic('orders', { defaultOffset: 'historical' });
    ta.append(0, values(0, 3));
    a.topics.set('orders', ta);
    const tb = new FakeTopic('audit.log');
    b.topics.set('audit.log', tb);
    const cc = binding(
      {
        exit: 'a',
        routes: [{ when: [{ topic: 'audit.*' }], exit: 'b' }],
        options: { topics: [{ name: 'orders', defaultOffset: 'live' }] },
      },
      { a: serverBinding('a', a), b: serverBinding('b', b) },
    );
    await cc.start(AbortSignal.timeout(1000));
    const orders = await cc.open('orders');
    const audit = await cc.open('audit.log');
    assert.equal(ta.attached, 1);
    assert.equal(tb.attached, 1);
    assert.equal(cc.streamCount, 2);
    assert.ok(await new StreamReader(orders).idle(), 'live from the binding options');
    await assert.rejects(cc.open('missing'), /does not exist/);
    await cc.stop(AbortSignal.timeout(1000));
    assert.equal(orders.closed, true);
    assert.equal(audit.closed, true);
    assert.equal(cc.streamCount, 0);
    await assert.rejects(cc.open('orders'), /stopped/);
  });

  it('refuses to start when an exit is not a cache server', async () => {
    const plain: Binding = { name: 'x', start: () => Promise.resolve(), stop: () => Promise.resolve() };
    const cc = binding({ exit: 'x' }, { x: plain });
    await assert.rejects(cc.start(AbortSignal.timeout(1000)), /exit x is not a kafka cache_server/);
  });

  it('releases an attachment that arrives after open was aborted', async () => {
    const t = new FakeTopic('slow');
    let resolveAttach: ((topic: CachedTopic) => void) | undefined;
    const slow = serverBinding('s', new FakeCacheServer());
    slow.attach = () => new Promise<CachedTopic>((resolve) => (resolveAttach = resolve));
    const cc = binding({ exit: 's' }, { s: slow });
    await cc.start(AbortSignal.timeout(1000));
    const controller = new AbortController();
    const opening = cc.open('slow', { signal: controller.signal });
    controller.abort(new Error('client went away'));
    await assert.rejects(opening, /client went away/);
    resolveAttach?.(t);
    await new Promise((r) => setImmediate(r));
    assert.equal(t.released, 1);
    await cc.stop(AbortSignal.timeout(1000));
  });

  it('reports open streams as a metric', async () => {
    const server = new FakeCacheServer();
    const t = new FakeTopic('metrics');
    server.topics.set('metrics', t);
    const registry = new Registry();
    const context: BindingContext = {
      config: { name: 'cc-metrics', type: 'kafka', kind: 'cache_client', options: {}, routes: [], exit: 's' },
      logger: pino({ level: 'silent' }),
      metrics: registry,
      stateDir: tmpdir(),
      lookup: () => serverBinding('s', server),
    };
    const cc = new CacheClientBinding(context);
    await cc.start(AbortSignal.timeout(1000));
    await cc.open('metrics');
    const text = await registry.metrics();
    assert.match(text, /kgate_cache_client_streams\{binding="cc-metrics"\} 1/);
    await cc.stop(AbortSignal.timeout(1000));
  });
});
