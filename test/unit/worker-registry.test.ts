import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { MessageChannel } from 'node:worker_threads';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { composition, defaultRegistry } from '../../src/bindings/index.ts';
import { kafkaCacheThreads } from '../../src/bindings/kafka/threads/index.ts';
import { CacheRpcClient } from '../../src/bindings/kafka/threads/cache-rpc.ts';
import { RemoteCacheServerBinding } from '../../src/bindings/kafka/threads/remote-cache-server.ts';
import type { BindingConfig } from '../../src/config/index.ts';
import type { Binding, BindingContext, BindingFactory } from '../../src/engine/binding.ts';
import { importComposition } from '../../src/engine/composition.ts';
import { BindingRegistry } from '../../src/engine/registry.ts';

function contextOf(type: string, kind: string): BindingContext {
  const config: BindingConfig = { name: `${type}-${kind}`, type, kind, options: {}, routes: [] };
  return {
    config,
    logger: pino({ level: 'silent' }),
    metrics: new Registry(),
    stateDir: '/nonexistent',
    lookup: () => {
      throw new Error('no exits here');
    },
  };
}

describe('BindingRegistry.map', () => {
  it('keeps every kind and builds each with the factory given for it', () => {
    const built: string[] = [];
    const factory =
      (label: string): BindingFactory =>
      (context) => {
        built.push(`${label} ${context.config.name}`);
        return { name: context.config.name, start: () => Promise.resolve(), stop: () => Promise.resolve() };
      };
    const registry = new BindingRegistry().register('a', 'x', factory('a')).register('b', 'y', factory('b'));
    const mapped = registry.map((type, _kind, original) => (type === 'a' ? factory('replaced') : original));
    assert.deepEqual(mapped.entries(), registry.entries());
    mapped.get('a', 'x')?.(contextOf('a', 'x'));
    mapped.get('b', 'y')?.(contextOf('b', 'y'));
    assert.deepEqual(built, ['replaced a-x', 'b b-y']);
  });
});

describe('kafka cache thread service', () => {
  it('gives a worker stand-ins for the cache_server and the Kafka-facing clients, and the rest as is', async () => {
    const channel = new MessageChannel();
    const client = kafkaCacheThreads.client(channel.port2);
    try {
      const all = defaultRegistry();
      const worker = all.map((type, kind, factory) => client.factory(type, kind, factory));
      assert.deepEqual(worker.entries(), all.entries());
      assert.ok(
        worker.get('kafka', 'cache_server')?.(contextOf('kafka', 'cache_server')) instanceof
          RemoteCacheServerBinding,
      );
      for (const [type, kind] of [
        ['kafka', 'client'],
        ['tcp', 'client'],
        ['tls', 'client'],
      ] as const) {
        const factory = worker.get(type, kind);
        assert.ok(factory !== undefined && factory !== all.get(type, kind), `${type} ${kind} is replaced`);
        // A placeholder: nothing to start or stop on a worker, whatever the options say.
        const placeholder: Binding = factory(contextOf(type, kind));
        await placeholder.start(AbortSignal.timeout(1_000));
        await placeholder.stop(AbortSignal.timeout(1_000));
      }
      for (const [type, kind] of [
        ['kafka', 'cache_client'],
        ['http', 'server'],
        ['tcp', 'server'],
        ['http-kafka', 'proxy'],
      ] as const)
        assert.equal(worker.get(type, kind), all.get(type, kind), `${type} ${kind} is kept`);
    } finally {
      client.close();
      channel.port1.close();
    }
  });

  it('serves a worker only from bindings of the main thread that are cache_servers', async () => {
    const channel = new MessageChannel();
    const plain: Binding = { name: 'south', start: () => Promise.resolve(), stop: () => Promise.resolve() };
    const host = kafkaCacheThreads.host(channel.port1, (name) => (name === 'south' ? plain : undefined));
    const rpc = new CacheRpcClient(channel.port2);
    try {
      await assert.rejects(
        rpc.attach('south', 'items', () => undefined),
        {
          message: 'binding south is not a running kafka cache_server',
        },
      );
    } finally {
      rpc.close();
      host.close();
    }
  });
});

describe('composition', () => {
  it('is what a worker thread finds at its module URL', async () => {
    assert.equal(await importComposition(composition.module), composition);
    assert.deepEqual(composition.registry().entries(), defaultRegistry().entries());
  });
});
