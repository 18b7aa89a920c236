import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import type { BindingConfig, LoadedConfig } from '../../src/config/index.ts';
import type { Binding, BindingContext } from '../../src/engine/binding.ts';
import { Engine } from '../../src/engine/engine.ts';
import { startOrder } from '../../src/engine/order.ts';
import { BindingRegistry } from '../../src/engine/registry.ts';

function binding(name: string, exit?: string, routeExits: string[] = []): BindingConfig {
  return {
    name,
    type: 'test',
    kind: 'node',
    options: {},
    routes: routeExits.map((e) => ({ when: [{ topic: '*' }], exit: e })),
    ...(exit === undefined ? {} : { exit }),
  };
}

function configOf(...bindings: BindingConfig[]): LoadedConfig {
  return {
    file: 'test.yaml',
    name: 'test',
    bindings: new Map(bindings.map((b) => [b.name, b])),
    warnings: [],
  };
}

describe('startOrder', () => {
  it('starts every binding after the bindings it exits to, routes included', () => {
    const order = startOrder(
      configOf(
        binding('north', 'cache_client'),
        binding('cache_client', 'cache_server'),
        binding('cache_server', 'client', ['tls']),
        binding('client'),
        binding('tls'),
      ).bindings,
    ).map((b) => b.name);
    assert.ok(order.indexOf('client') < order.indexOf('cache_server'));
    assert.ok(order.indexOf('tls') < order.indexOf('cache_server'));
    assert.ok(order.indexOf('cache_server') < order.indexOf('cache_client'));
    assert.ok(order.indexOf('cache_client') < order.indexOf('north'));
    assert.equal(order.length, 5);
  });

  it('names the cycle it finds', () => {
    assert.throws(() => startOrder(configOf(binding('a', 'b'), binding('b', 'a')).bindings), {
      message: 'exit cycle a -> b -> a',
    });
  });
});

describe('Engine', () => {
  const events: string[] = [];
  const registry = new BindingRegistry().register('test', 'node', (ctx: BindingContext): Binding => ({
    name: ctx.config.name,
    async start() {
      if (ctx.config.options['fail'] === true) throw new Error('boom');
      if (ctx.config.exit !== undefined) assert.equal(ctx.lookup(ctx.config.exit).name, ctx.config.exit);
      events.push(`start ${ctx.config.name}`);
    },
    async stop() {
      events.push(`stop ${ctx.config.name}`);
    },
  }));

  it('starts in dependency order and stops in reverse', async () => {
    events.length = 0;
    const dir = await mkdtemp(join(tmpdir(), 'kgate-engine-'));
    const engine = new Engine(configOf(binding('a', 'b'), binding('b', 'c'), binding('c')), registry, {
      logger: pino({ level: 'silent' }),
      stateDir: dir,
    });
    await engine.start();
    await engine.stop(1000);
    assert.deepEqual(events, ['start c', 'start b', 'start a', 'stop a', 'stop b', 'stop c']);
    await rm(dir, { recursive: true, force: true });
  });

  it('stops what it started when a later binding fails to start', async () => {
    events.length = 0;
    const failing = { ...binding('a', 'b'), options: { fail: true } };
    const engine = new Engine(configOf(failing, binding('b')), registry, {
      logger: pino({ level: 'silent' }),
      stateDir: tmpdir(),
    });
    await assert.rejects(engine.start(), { message: 'binding a failed to start: boom' });
    assert.deepEqual(events, ['start b', 'stop b']);
  });

  it('refuses a (type, kind) registered twice', () => {
    assert.throws(
      () =>
        registry.register('test', 'node', () => ({ name: 'x', start: async () => {}, stop: async () => {} })),
      {
        message: 'binding test node is registered twice',
      },
    );
  });

  it('reports a kind this build cannot run, naming the binding', async () => {
    const engine = new Engine(configOf({ ...binding('x'), type: 'sse', kind: 'server' }), registry, {
      logger: pino({ level: 'silent' }),
      stateDir: tmpdir(),
    });
    await assert.rejects(engine.start(), { message: 'binding x: type sse kind server is not available' });
  });
});

describe('Engine readiness', () => {
  /** A binding that is ready when `ready` settles, and counts its starts and stops. */
  function waiting(ready: Promise<void>, events: string[]): BindingRegistry {
    return new BindingRegistry().register('test', 'node', (ctx: BindingContext): Binding => ({
      name: ctx.config.name,
      async start() {
        events.push(`start ${ctx.config.name}`);
      },
      ready: (signal: AbortSignal) =>
        new Promise<void>((resolve, reject) => {
          ready.then(resolve, reject);
          signal.addEventListener(
            'abort',
            () => reject(new Error('Kafka not reachable at b:9092: refused')),
            {
              once: true,
            },
          );
        }),
      async stop() {
        events.push(`stop ${ctx.config.name}`);
      },
    }));
  }

  it('starts without waiting for what its bindings wait for, and tells when they are ready', async () => {
    const events: string[] = [];
    let up: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => (up = resolve));
    const engine = new Engine(configOf(binding('a', 'b'), binding('b')), waiting(ready, events), {
      logger: pino({ level: 'silent' }),
      stateDir: tmpdir(),
    });
    await engine.start();
    assert.deepEqual(events, ['start b', 'start a']);
    let isReady = false;
    const readiness = engine.ready(new AbortController().signal).then(() => (isReady = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(isReady, false);
    up();
    await readiness;
    await engine.stop(1000);
  });

  it('with a start timeout, waits for readiness within it, and past it stops everything and says why', async () => {
    const events: string[] = [];
    const engine = new Engine(
      configOf(binding('a', 'b'), binding('b')),
      waiting(new Promise(() => {}), events),
      {
        logger: pino({ level: 'silent' }),
        stateDir: tmpdir(),
        startTimeoutMs: 50,
      },
    );
    await assert.rejects(engine.start(), {
      message: 'binding b failed to start: Kafka not reachable at b:9092: refused',
    });
    assert.deepEqual(events, ['start b', 'start a', 'stop a', 'stop b']);
  });
});
