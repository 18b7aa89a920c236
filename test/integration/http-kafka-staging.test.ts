// HTTP request bodies produced through http-kafka share their cache_client's staging budget: a
// body that does not fit waits unread, and a client that leaves gives its share back.
import { strict as assert } from 'node:assert';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { defaultRegistry } from '../../src/bindings/index.ts';
import { CacheClientBinding } from '../../src/bindings/kafka/cache_client/index.ts';
import { startKafka, type KafkaCluster } from '../../src/embedded/kafka/index.ts';
import { Engine } from '../../src/engine/engine.ts';
import { drain, take, waitFor } from './cache-client-harness.ts';
import { startYamlEngine } from '../support/yaml-engine.ts';

const registry = defaultRegistry();
const skip = registry.get('http-kafka', 'proxy') === undefined ? 'http-kafka is not built in' : false;

const TOPIC = 'staged-items';
const BUDGET = 1024 * 1024;

let kafka: KafkaCluster;
let engine: Engine;
let stateDir: string;
let port: number;
let north: CacheClientBinding;

before(async () => {
  if (skip !== false) return;
  kafka = await startKafka();
  await kafka.createTopic(TOPIC, { partitions: 2 });
  stateDir = await mkdtemp(join(tmpdir(), 'kgate-http-kafka-staging-'));
  const yaml = `
name: http-kafka-staging
bindings:
  tcp: { type: tcp, kind: server, options: { host: 127.0.0.1, port: 0 }, exit: http }
  http: { type: http, kind: server, options: { versions: [http/1.1], timeouts: { body-idle: 1 } }, exit: rest }
  rest:
    type: http-kafka
    kind: proxy
    routes:
      - when: [{ method: PUT, path: "/items/{id}" }]
        exit: north
        with: { capability: produce, topic: ${TOPIC}, key: "\${params.id}" }
  north: { type: kafka, kind: cache_client, options: { staging: { maxBytes: ${BUDGET} } }, exit: cache }
  cache: { type: kafka, kind: cache_server, exit: south }
  south: { type: kafka, kind: client, options: { servers: ["${kafka.bootstrap}"] } }
`;
  ({ engine, port } = await startYamlEngine(yaml, 'http-kafka-staging.yaml', stateDir));
  const client = engine.binding('north');
  assert.ok(client instanceof CacheClientBinding);
  north = client;
});

after(async () => {
  if (skip !== false) return;
  await engine?.stop(5_000);
  await kafka?.stop();
  if (stateDir !== undefined) await rm(stateDir, { recursive: true, force: true });
});

const sha = (b: Buffer | null): string =>
  createHash('sha256')
    .update(b ?? Buffer.alloc(0))
    .digest('hex');

function put(id: string, body: Buffer): Promise<Response> {
  return fetch(`http://127.0.0.1:${port}/items/${id}`, { method: 'PUT', body });
}

/** Whether a promise settles within ms. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  const settled = promise.then(
    () => true,
    () => true,
  );
  const got = await Promise.race([settled, timeout]);
  clearTimeout(timer);
  return got;
}

describe('http-kafka produce under a staging budget', { skip }, () => {
  it('holds a body while the budget is full and produces it once room is freed', async () => {
    // A producer of the same binding takes most of the budget and keeps its message open.
    const holder = await north.open(TOPIC, { capabilities: 'produce' });
    const held = holder.produceStream({ key: 'holder' });
    assert.equal(held.write(Buffer.alloc(900 * 1024)), true);
    const waitsBefore = north.staging.waits;
    const body = randomBytes(300 * 1024);
    const answer = put('waiting', body);
    assert.equal(await settlesWithin(answer, 1_000), false, 'answered while the budget was full');
    assert.ok(north.staging.waits > waitsBefore, 'the request body waited for room');
    assert.ok(north.staging.usedBytes <= BUDGET);
    held.abort();
    const res = await answer;
    assert.equal(res.status, 204);
    holder.close();
    await waitFor('staged bytes given back', () => north.staging.usedBytes === 0, 5_000);
    const reader = await north.open(TOPIC, { defaultOffset: 'historical' });
    const [got] = await take(reader, 1, 10_000);
    reader.close();
    assert.equal(got?.key?.toString(), 'waiting');
    assert.equal(sha(got?.value ?? null), sha(body));
  });

  it('gives the budget back when a client leaves while its body waits, once its turn comes', async () => {
    const holder = await north.open(TOPIC, { capabilities: 'produce' });
    const held = holder.produceStream({ key: 'holder' });
    try {
      assert.equal(held.write(Buffer.alloc(900 * 1024)), true);
      const req = httpRequest({
        host: '127.0.0.1',
        port,
        method: 'PUT',
        path: '/items/leaving',
        agent: false,
        headers: { 'content-length': String(400 * 1024) },
      });
      req.on('error', () => undefined);
      req.write(randomBytes(200 * 1024));
      const waitsBefore = north.staging.waits;
      await waitFor('the body to wait for room', () => north.staging.waits > waitsBefore, 5_000);
      // A body that waits is not read, so its connection's close is seen only when reading resumes.
      req.destroy();
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(north.staging.accounts, 2, 'the waiting body keeps its place until its turn');
    } finally {
      held.abort();
      holder.close();
    }
    await waitFor('the leaving request to be dropped', () => north.staging.accounts === 0, 5_000);
    assert.equal(north.staging.usedBytes, 0);
    const res = await put('after-leaving', Buffer.from('{}'));
    assert.equal(res.status, 204, 'the budget serves the next producer');
  });

  it('takes 12 parallel 600 KB bodies through a 1 MiB budget, each produced once', async () => {
    const bodies = Array.from({ length: 12 }, () => randomBytes(600 * 1024));
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, north.staging.usedBytes)), 5);
    const waitsBefore = north.staging.waits;
    let statuses: number[];
    try {
      statuses = (await Promise.all(bodies.map((body, i) => put(`parallel-${i}`, body)))).map(
        (r) => r.status,
      );
    } finally {
      clearInterval(sampler);
    }
    assert.deepEqual(
      statuses,
      bodies.map(() => 204),
    );
    assert.ok(peak <= BUDGET, `staged ${peak} bytes`);
    assert.ok(north.staging.waits > waitsBefore, 'bodies waited for room');
    assert.equal(north.staging.usedBytes, 0);
    const reader = await north.open(TOPIC, { defaultOffset: 'historical' });
    // The ones produced by the tests before, then these.
    const got = await take(reader, 2 + bodies.length, 20_000);
    assert.deepEqual((await drain(reader, 500)).messages, [], 'nothing produced twice');
    reader.close();
    const parallel = got.filter((m) => m.key?.toString().startsWith('parallel-'));
    assert.equal(parallel.length, bodies.length);
    for (const m of parallel) {
      const i = Number(m.key?.toString().slice('parallel-'.length));
      assert.equal(sha(m.value), sha(bodies[i] ?? null), `body ${i}`);
    }
  });

  it('answers a body that stalls 408 within the body idle timeout and gives its staged bytes back', async () => {
    const answer = await new Promise<{ status: number; ms: number }>((resolve, reject) => {
      const began = Date.now();
      const req = httpRequest({
        host: '127.0.0.1',
        port,
        method: 'PUT',
        path: '/items/stalled',
        agent: false,
        headers: { 'content-length': String(300 * 1024) },
      });
      req.on('response', (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, ms: Date.now() - began });
      });
      req.on('error', reject);
      req.write(randomBytes(100 * 1024));
    });
    assert.equal(answer.status, 408);
    assert.ok(answer.ms >= 1_000 && answer.ms < 5_000, `answered after ${answer.ms} ms`);
    await waitFor('staged bytes given back', () => north.staging.usedBytes === 0, 5_000);
    assert.equal(north.staging.accounts, 0);
    const res = await put('after-stalled', Buffer.from('{}'));
    assert.equal(res.status, 204);
  });
});
