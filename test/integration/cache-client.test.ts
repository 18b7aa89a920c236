import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { defaultRegistry } from '../../src/bindings/index.ts';
import {
  CacheClientBinding,
  type CacheMessage,
  type CacheStream,
} from '../../src/bindings/kafka/cache_client/index.ts';
import { parseConfig } from '../../src/config/index.ts';
import { startKafka, type KafkaCluster } from '../../src/embedded/kafka/index.ts';
import { Engine } from '../../src/engine/engine.ts';

// The chain needs the cache_server kind; until this build registers it there is nothing to run.
const available = defaultRegistry().get('kafka', 'cache_server') !== undefined;

let kafka: KafkaCluster;
let engine: Engine;
let stateDir: string;
let cacheClient: CacheClientBinding;

before(async () => {
  if (!available) return;
  kafka = await startKafka();
  stateDir = await mkdtemp(join(tmpdir(), 'kgate-cache-client-it-'));
  const yaml = [
    'name: cache-client-it',
    'bindings:',
    '  north: { type: kafka, kind: cache_client, exit: cache }',
    '  cache: { type: kafka, kind: cache_server, exit: south }',
    `  south: { type: kafka, kind: client, options: { servers: ["${kafka.bootstrap}"] } }`,
  ].join('\n');
  engine = new Engine(parseConfig(yaml, 'cache-client-it.yaml'), defaultRegistry(), {
    logger: pino({ level: process.env['KGATE_TEST_LOG'] ?? 'silent' }),
    stateDir,
  });
  await engine.start();
  const north = engine.binding('north');
  assert.ok(north instanceof CacheClientBinding);
  cacheClient = north;
});

after(async () => {
  if (!available) return;
  await engine?.stop(5_000);
  await kafka?.stop();
  if (stateDir !== undefined) await rm(stateDir, { recursive: true, force: true });
});

let topicCounter = 0;
async function topic(partitions: number, configs?: Record<string, string>): Promise<string> {
  const name = `cc${++topicCounter}-${Date.now()}`;
  await kafka.createTopic(name, { partitions, ...(configs === undefined ? {} : { configs }) });
  return name;
}

async function take(stream: CacheStream, count: number, timeoutMs = 30_000): Promise<CacheMessage[]> {
  const out: CacheMessage[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < count) {
    const left = deadline - Date.now();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), left)));
    const got = await Promise.race([stream.next(), timeout]);
    clearTimeout(timer);
    if (got === 'timeout') throw new Error(`only ${out.length} of ${count} messages arrived`);
    if (got.done === true) throw new Error(`stream ended after ${out.length} of ${count}`);
    out.push(got.value);
  }
  return out;
}

/** Resolves true when the stream delivers nothing for ms; the next() it started stays pending. */
async function quiet(stream: CacheStream, ms: number): Promise<{ idle: boolean; pending: Promise<unknown> }> {
  const pending = stream.next();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
  const got = await Promise.race([pending, timeout]);
  clearTimeout(timer);
  return { idle: got === 'timeout', pending };
}

function kcat(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('kcat', ['-b', kafka.bootstrap, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`kcat exited ${code}: ${err}`)),
    );
  });
}

const str = (b: Buffer | null): string => (b === null ? 'null' : b.toString());
const kv = (m: CacheMessage): string => `${str(m.key)}=${str(m.value)}`;

describe('cache_client through cache_server and a real broker', { skip: !available }, () => {
  it('gives a new consumer of a compacted topic the latest value per key, then goes live', async () => {
    const t = await topic(1, { 'cleanup.policy': 'compact' });
    await kafka.produce(t, [
      { key: 'a', value: 'a1' },
      { key: 'b', value: 'b1' },
      { key: 'a', value: 'a2' },
      { key: 'b', value: null },
      { key: 'c', value: 'c1' },
    ]);
    const stream = await cacheClient.open(t);
    assert.deepEqual((await take(stream, 2)).map(kv), ['a=a2', 'c=c1']);
    const { idle, pending } = await quiet(stream, 1_000);
    assert.ok(idle, 'nothing but the latest values before live');
    await kafka.produce(t, [
      { key: 'c', value: null },
      { key: 'd', value: 'd1' },
    ]);
    const first = (await pending) as IteratorResult<CacheMessage>;
    assert.equal(first.done, false);
    const live = [first.value as CacheMessage, ...(await take(stream, 1))];
    assert.deepEqual(live.map(kv), ['c=null', 'd=d1']);
    stream.close();
  });

  it('replays a delete topic from the start and resumes from progress with no loss or duplicate', async () => {
    const t = await topic(3);
    await kafka.produce(
      t,
      Array.from({ length: 30 }, (_, i) => ({ key: `k${i}`, value: `v${i}`, partition: i % 3 })),
    );
    const first = await cacheClient.open(t, { defaultOffset: 'historical' });
    const head = await take(first, 12);
    const progress = head[head.length - 1]?.progress;
    assert.ok(progress);
    first.close();
    for (let p = 0; p < 3; p++) {
      const offsets = head.filter((m) => m.partition === p).map((m) => Number(m.offset));
      assert.deepEqual(
        offsets,
        offsets.map((_, i) => i),
        `partition ${p} in order from its start`,
      );
    }

    const second = await cacheClient.open(t, { partitions: progress });
    const tail = await take(second, 18);
    await kafka.produce(t, [{ key: 'late', value: 'late', partition: 1 }]);
    const late = await take(second, 1);
    second.close();
    const values = [...head, ...tail, ...late].map((m) => str(m.value));
    assert.equal(new Set(values).size, 31);
    assert.deepEqual([...values].sort(), [...Array.from({ length: 30 }, (_, i) => `v${i}`), 'late'].sort());
  });

  it('starts a live stream at the head', async () => {
    const t = await topic(2);
    await kafka.produce(t, [{ key: 'old', value: 'old' }]);
    // Let the cache take in the old record first, so "live" has a head to start from.
    const warm = await cacheClient.open(t, { defaultOffset: 'historical' });
    await take(warm, 1);
    warm.close();
    const stream = await cacheClient.open(t, { defaultOffset: 'live' });
    await kafka.produce(t, [{ key: 'new', value: 'new' }]);
    assert.deepEqual((await take(stream, 1)).map(kv), ['new=new']);
    stream.close();
  });

  it('filters by key and by header', async () => {
    const t = await topic(2);
    await kafka.produce(t, [
      { key: 'k1', value: 'one', headers: { type: 'x' } },
      { key: 'k2', value: 'two', headers: { type: 'y' } },
      { key: 'k3', value: 'three', headers: { type: 'x' } },
      { key: 'k4', value: 'four' },
    ]);
    const stream = await cacheClient.open(t, {
      defaultOffset: 'historical',
      filters: [[{ key: Buffer.from('k2') }], [{ header: { name: 'type', value: Buffer.from('x') } }]],
    });
    const got = await take(stream, 3);
    assert.deepEqual(got.map((m) => `${str(m.value)}:${m.filters}`).sort(), ['one:2', 'three:2', 'two:1']);
    const { idle } = await quiet(stream, 1_000);
    assert.ok(idle);
    stream.close();
  });

  it('produces through the chain, read back by kcat and by the stream', async () => {
    const t = await topic(1);
    const stream = await cacheClient.open(t, {
      capabilities: 'produce_and_fetch',
      defaultOffset: 'historical',
    });
    const acks = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        stream.produce({ key: `p${i}`, value: `value-${i}`, headers: { n: String(i) } }),
      ),
    );
    assert.deepEqual(
      acks.map((a) => a.partition),
      [0, 0, 0, 0, 0],
    );
    const staged = stream.produceStream({ key: 'staged' });
    for (let i = 0; i < 10; i++) staged.write(`chunk${i};`);
    const ack = await staged.end();
    assert.equal(ack.offsets.length, 1);

    const lines = (await kcat(['-C', '-t', t, '-o', 'beginning', '-e', '-q', '-f', '%k|%s|%h\\n']))
      .split('\n')
      .filter((l) => l !== '');
    assert.equal(lines.length, 6);
    assert.ok(lines.includes('p3|value-3|n=3'), lines.join('\n'));
    assert.ok(
      lines.includes(`staged|${Array.from({ length: 10 }, (_, i) => `chunk${i};`).join('')}|`),
      lines.join('\n'),
    );

    const back = await take(stream, 6);
    assert.deepEqual(back.map((m) => str(m.key)).sort(), ['p0', 'p1', 'p2', 'p3', 'p4', 'staged']);
    stream.close();
  });
});
