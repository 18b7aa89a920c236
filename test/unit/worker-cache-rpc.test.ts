import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { MessageChannel } from 'node:worker_threads';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { CacheStore } from '../../src/bindings/kafka/cache/index.ts';
import { RemoteCacheServerBinding } from '../../src/bindings/kafka/threads/remote-cache-server.ts';
import type {
  CachedTopic,
  CachedTopicConfig,
  CacheServerApi,
  TopicChange,
} from '../../src/bindings/kafka/cache_server/api.ts';
import {
  KafkaProtocolError,
  type ProduceOptions,
  type ProduceRecord,
  type ProduceResult,
} from '../../src/bindings/kafka/client/index.ts';
import { CacheHost } from '../../src/bindings/kafka/threads/cache-host.ts';
import { CacheRpcClient } from '../../src/bindings/kafka/threads/cache-rpc.ts';
import { topicConfig } from '../support/topic-config.ts';

const CONFIG: CachedTopicConfig = topicConfig();

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The main thread's cache_server as the host sees it, over a real store, driven by the test. */
class FakeCacheServer implements CacheServerApi {
  readonly store: CacheStore;
  readonly listeners = new Set<(change: TopicChange) => void>();
  attaches = 0;
  releases = 0;
  attachError: Error | undefined;
  produceError: Error | undefined;
  readonly produced: ProduceRecord[][] = [];

  constructor(store: CacheStore) {
    this.store = store;
  }

  emit(change: TopicChange): void {
    for (const listener of this.listeners) listener(change);
  }

  attach(topic: string): Promise<CachedTopic> {
    this.attaches++;
    if (this.attachError !== undefined) return Promise.reject(this.attachError);
    const mine = new Set<(change: TopicChange) => void>();
    return Promise.resolve({
      topic,
      config: CONFIG,
      compacted: false,
      defaultOffset: 'historical',
      partitions: () => [0, 1],
      isReady: (p) => p === 0,
      producedEnd: () => -1n,
      store: (p) => this.store.partition(topic, p),
      onChange: (listener) => {
        mine.add(listener);
        this.listeners.add(listener);
        return () => {
          mine.delete(listener);
          this.listeners.delete(listener);
        };
      },
      release: () => {
        this.releases++;
        for (const l of mine) this.listeners.delete(l);
      },
    });
  }

  produce(
    topic: string,
    partition: number | undefined,
    records: readonly ProduceRecord[],
    _options?: ProduceOptions,
  ): Promise<ProduceResult & { readonly partition: number }> {
    if (this.produceError !== undefined) return Promise.reject(this.produceError);
    this.produced.push([...records]);
    return Promise.resolve({
      topic,
      partition: partition ?? 0,
      baseOffset: 41n,
      offsets: records.map((_, i) => 41n + BigInt(i)),
      logAppendTime: null,
    });
  }
}

async function setup(): Promise<{
  server: FakeCacheServer;
  remote: RemoteCacheServerBinding;
  host: CacheHost;
  close: () => Promise<void>;
}> {
  const dir = mkdtempSync(join(tmpdir(), 'kgate-worker-rpc-'));
  dirs.push(dir);
  const writer = CacheStore.open(dir, { durability: 'none', mapSize: 64 * 1024 * 1024 });
  const server = new FakeCacheServer(writer);
  const channel = new MessageChannel();
  const host = new CacheHost(channel.port1, (name) => (name === 'cache' ? server : undefined));
  const rpc = new CacheRpcClient(channel.port2);
  const remote = new RemoteCacheServerBinding(
    {
      config: { name: 'cache', type: 'kafka', kind: 'cache_server', options: {}, routes: [] },
      logger: pino({ level: 'silent' }),
      metrics: new Registry(),
      stateDir: dir,
      lookup: () => {
        throw new Error('a remote cache_server has no exits');
      },
    },
    rpc,
  );
  await remote.start(AbortSignal.timeout(1_000));
  return {
    server,
    remote,
    host,
    close: async () => {
      await remote.stop(AbortSignal.timeout(1_000));
      rpc.close();
      host.close();
      await writer.close();
    },
  };
}

function record(
  offset: bigint,
  value: string,
): {
  offset: bigint;
  timestamp: number;
  key: Buffer;
  value: Buffer;
  headers: [];
} {
  return { offset, timestamp: Date.now(), key: Buffer.from('k'), value: Buffer.from(value), headers: [] };
}

/** Lets both ends of the port deliver what is queued (a message, then the batch it triggers). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await nextTurn();
}

describe('worker cache RPC', () => {
  it('shares one main-thread attachment per topic and releases it after the last handle', async () => {
    const t = await setup();
    try {
      const [a, b] = await Promise.all([t.remote.attach('orders'), t.remote.attach('orders')]);
      assert.equal(t.server.attaches, 1);
      assert.deepEqual([...a.partitions()], [0, 1]);
      assert.equal(a.isReady(0), true);
      assert.equal(b.isReady(1), false);
      assert.equal(a.config.maxMessageBytes, 1024);
      a.release();
      await settle();
      assert.equal(t.server.releases, 0, 'b still holds the topic');
      b.release();
      await settle();
      assert.equal(t.server.releases, 1);
      assert.equal(t.host.attachments, 0);
      await t.remote.attach('orders');
      assert.equal(t.server.attaches, 2, 'a released topic is attached anew');
    } finally {
      await t.close();
    }
  });

  it('coalesces appended per partition and reads what was announced from the shared store', async () => {
    const t = await setup();
    try {
      const topic = await t.remote.attach('orders');
      const seen: TopicChange[] = [];
      topic.onChange((c) => seen.push(c));
      const writer = t.server.store.partition('orders', 0);
      for (let i = 0; i < 3; i++) {
        writer.append([record(BigInt(i), `v${i}`)], { lastStableOffset: BigInt(i + 1) });
        t.server.emit({ type: 'appended', partition: 0, nextOffset: BigInt(i + 1) });
      }
      t.server.emit({ type: 'ready', partition: 1 });
      await settle();
      assert.deepEqual(seen, [
        { type: 'ready', partition: 1 },
        { type: 'appended', partition: 0, nextOffset: 3n },
      ]);
      assert.equal(topic.isReady(1), true);
      const reader = topic.store(0);
      assert.equal(reader.nextOffset, 3n);
      assert.deepEqual(
        reader.read(0n).records.map((r) => r.value?.toString()),
        ['v0', 'v1', 'v2'],
      );
      assert.throws(() => reader.append([record(3n, 'x')], { lastStableOffset: 4n }), /reading only/);
      topic.release();
    } finally {
      await t.close();
    }
  });

  it('ends a failed attachment with its error and attaches again on the next attach()', async () => {
    const t = await setup();
    try {
      const topic = await t.remote.attach('orders');
      const seen: TopicChange[] = [];
      topic.onChange((c) => seen.push(c));
      t.server.emit({ type: 'error', error: new Error('topic "orders" was deleted') });
      await settle();
      const last = seen.at(-1);
      assert.equal(last?.type, 'error');
      assert.match(last.type === 'error' ? last.error.message : '', /was deleted/);
      await t.remote.attach('orders');
      assert.equal(t.server.attaches, 2);
    } finally {
      await t.close();
    }
  });

  it('rejects attach with the main thread error', async () => {
    const t = await setup();
    try {
      t.server.attachError = new Error('topic "nope" does not exist');
      await assert.rejects(t.remote.attach('nope'), /topic "nope" does not exist/);
    } finally {
      await t.close();
    }
  });

  it('acknowledges produce with Buffers on the main thread and keeps error classes', async () => {
    const t = await setup();
    try {
      const ack = await t.remote.produce('orders', undefined, [
        {
          key: Buffer.from('k1'),
          value: Buffer.from('hello'),
          headers: [{ key: 'h', value: Buffer.from('x') }],
        },
      ]);
      assert.equal(ack.baseOffset, 41n);
      assert.equal(ack.partition, 0);
      const sent = t.server.produced[0]?.[0];
      assert.ok(Buffer.isBuffer(sent?.value));
      assert.equal(sent?.value.toString(), 'hello');
      assert.ok(Buffer.isBuffer(sent?.key));

      t.server.produceError = new KafkaProtocolError(29, 'produce to orders');
      const error: unknown = await t.remote.produce('orders', 0, [{ value: 'x' }]).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(error instanceof KafkaProtocolError);
      assert.equal(error.brokerCode, 29);
      assert.equal(error.code, 'KGATE_NOT_AUTHORIZED');
      assert.equal(error.retriable, false);
      assert.match(error.message, /^produce to orders: TOPIC_AUTHORIZATION_FAILED \(29\)/);
    } finally {
      await t.close();
    }
  });
});
