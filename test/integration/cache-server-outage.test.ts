// A cache_server whose broker is not there: at startup, and later while it runs.
import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { defaultRegistry } from '../../src/bindings/index.ts';
import { CacheServerBinding } from '../../src/bindings/kafka/cache_server/index.ts';
import { KafkaClient, KafkaClientError, type KafkaApi } from '../../src/bindings/kafka/client/index.ts';
import { parseConfig } from '../../src/config/index.ts';
import { startKafka, type KafkaCluster } from '../../src/embedded/kafka/index.ts';
import type { Binding } from '../../src/engine/binding.ts';
import { Engine } from '../../src/engine/engine.ts';
import { kafkaExit } from '../support/kafka-exit.ts';

const logger = pino({ level: process.env['KGATE_TEST_LOG'] ?? 'silent' });
let kafka: KafkaCluster;
let root: string;
let engine: Engine | undefined;
let direct: CacheServerBinding | undefined;
let raw: KafkaClient | undefined;

before(async () => {
  kafka = await startKafka();
  root = await mkdtemp(join(tmpdir(), 'kgate-cache-outage-'));
});

after(async () => {
  await direct?.stop(AbortSignal.timeout(5_000));
  await raw?.close();
  await engine?.stop(5_000);
  await kafka?.stop();
  if (root !== undefined) await rm(root, { recursive: true, force: true });
});

async function waitFor(what: string, condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(100);
  }
}

function values(binding: CacheServerBinding, topic: string, partition: number): string[] {
  const store = binding.store;
  assert.ok(store !== undefined);
  return store
    .partition(topic, partition)
    .read(0n, { maxRecords: 1_000 })
    .records.map((r) => r.value?.toString() ?? '<null>');
}

function expected(from: number, to: number, partition: number): string[] {
  return Array.from({ length: to - from }, (_, i) => `p${partition}-${from + i}`);
}

async function produce(topic: string, from: number, to: number): Promise<void> {
  await kafka.produce(
    topic,
    [0, 1].flatMap((partition) =>
      expected(from, to, partition).map((value) => ({ partition, key: value, value })),
    ),
  );
}

/** A KafkaClient never started, as a binding: nothing has waited for a broker before the cache_server starts. */
function unstarted(client: KafkaClient): Binding & KafkaApi {
  return kafkaExit(client, { stop: () => client.close() });
}

describe('cache_server and broker outages', () => {
  it('starts before the broker, fills once it is up, and resumes after a later outage', async () => {
    const topic = `outage-${Date.now()}`;
    await kafka.createTopic(topic, { partitions: 2 });
    await produce(topic, 0, 10);
    const [broker] = kafka.brokerIds;
    assert.ok(broker !== undefined);
    await kafka.stopBroker(broker);

    // Through the engine, as `kgate start --start-timeout` runs it: its start waits for the
    // client binding to reach the broker within the start deadline.
    const yaml = [
      'name: outage',
      'bindings:',
      `  cache: { type: kafka, kind: cache_server, exit: south, options: { bootstrap: ["${topic}"] } }`,
      `  south: { type: kafka, kind: client, options: { servers: ["${kafka.bootstrap}"] } }`,
    ].join('\n');
    const gateway = new Engine(parseConfig(yaml, 'outage.yaml'), defaultRegistry(), {
      logger,
      stateDir: join(root, 'engine'),
      startTimeoutMs: 90_000,
    });
    engine = gateway;
    let started = false;
    const starting = gateway.start().then(() => {
      started = true;
    });

    // The cache_server itself needs no broker to start: its bootstrap topics retry in the
    // background for as long as it takes, not just within a start deadline.
    const client = new KafkaClient({ servers: [kafka.bootstrap], retryInitialMs: 50, retryMaxMs: 500 });
    raw = client;
    const cache = new CacheServerBinding(
      {
        config: {
          name: 'direct',
          type: 'kafka',
          kind: 'cache_server',
          options: { bootstrap: [topic] },
          routes: [],
          exit: 'south',
        },
        logger,
        metrics: new Registry(),
        stateDir: join(root, 'direct'),
        lookup: () => unstarted(client),
      },
      {
        metadataRefreshMs: 500,
        configRefreshMs: 500,
        retryInitialMs: 100,
        retryMaxMs: 1_000,
        durability: 'none',
      },
    );
    await cache.start(AbortSignal.timeout(2_000));
    direct = cache;

    // With no broker, a bounded call gives up when told to instead of retrying for ever.
    const t0 = Date.now();
    await assert.rejects(
      client.describeTopicConfigs(topic, { signal: AbortSignal.timeout(300) }),
      (error: unknown) =>
        error instanceof KafkaClientError && !error.retriable && /aborted/.test(error.message),
    );
    assert.ok(Date.now() - t0 < 10_000, `aborted after ${Date.now() - t0} ms`);

    await delay(1_000);
    assert.equal(started, false, 'the engine started without a broker');
    assert.equal(cache.store?.partition(topic, 0).nextOffset, 0n);

    await kafka.startBroker(broker);
    await starting;
    const viaEngine = gateway.binding('cache');
    assert.ok(viaEngine instanceof CacheServerBinding);
    for (const binding of [viaEngine, cache])
      await waitFor(`${binding.name} filled`, () =>
        [0, 1].every((p) => binding.store?.partition(topic, p).nextOffset === 10n),
      );
    for (const binding of [viaEngine, cache])
      for (const p of [0, 1]) assert.deepEqual(values(binding, topic, p), expected(0, 10, p));

    // The broker goes away under running feeders and comes back: no restart of kgate.
    await kafka.stopBroker(broker);
    await delay(2_000);
    await kafka.startBroker(broker);
    await produce(topic, 10, 20);
    for (const binding of [viaEngine, cache])
      await waitFor(`${binding.name} resumed`, () =>
        [0, 1].every((p) => binding.store?.partition(topic, p).nextOffset === 20n),
      );
    for (const binding of [viaEngine, cache])
      for (const p of [0, 1]) assert.deepEqual(values(binding, topic, p), expected(0, 20, p));
  });

  it('bounds describeTopicConfigs and listOffsets of a missing topic by a signal', async () => {
    const client = raw;
    assert.ok(client !== undefined);
    const missing = `missing-${Date.now()}`;
    for (const call of [
      () => client.describeTopicConfigs(missing, { signal: AbortSignal.timeout(500) }),
      () =>
        client.listOffsets(missing, 0, 'latest', 'read_uncommitted', { signal: AbortSignal.timeout(500) }),
    ]) {
      const t0 = Date.now();
      await assert.rejects(call(), /aborted/);
      assert.ok(Date.now() - t0 < 10_000, `aborted after ${Date.now() - t0} ms`);
    }
    // An already aborted signal fails at once; a live one changes nothing for an existing topic.
    await assert.rejects(
      client.listOffsets(missing, 0, 'latest', undefined, { signal: AbortSignal.abort() }),
      /aborted/,
    );
    const existing = `present-${Date.now()}`;
    await kafka.createTopic(existing, { partitions: 1, configs: { 'retention.ms': '12345' } });
    const configs = await client.describeTopicConfigs(existing, { signal: AbortSignal.timeout(30_000) });
    assert.equal(configs['retention.ms'], '12345');
    assert.equal(
      await client.listOffsets(existing, 0, 'latest', undefined, { signal: AbortSignal.timeout(30_000) }),
      0n,
    );
  });
});
