import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { defaultRegistry } from '../../src/bindings/index.ts';
import { startKafka, type KafkaCluster } from '../../src/embedded/kafka/index.ts';
import { Engine } from '../../src/engine/engine.ts';
import { partitionForKey } from '../../src/bindings/kafka/cache_server/murmur2.ts';
import { startYamlEngine } from '../support/yaml-engine.ts';
import { openEventStream } from '../support/event-stream.ts';

// The chain runs from a TCP listener to a real broker; every kind on the way must be built in.
const KINDS: [string, string][] = [
  ['tcp', 'server'],
  ['http', 'server'],
  ['sse', 'server'],
  ['sse-kafka', 'proxy'],
  ['http-kafka', 'proxy'],
  ['kafka', 'cache_client'],
  ['kafka', 'cache_server'],
  ['kafka', 'client'],
];
const registry = defaultRegistry();
const missing = KINDS.filter(([type, kind]) => registry.get(type, kind) === undefined).map((k) =>
  k.join(' '),
);
const skip = missing.length === 0 ? false : `not built in yet: ${missing.join(', ')}`;

let kafka: KafkaCluster;
let engine: Engine;
let stateDir: string;
let port: number;

const EVENTS = 'events';
const ITEMS = 'items';
const LARGE = 'large';

before(async () => {
  if (skip !== false) return;
  kafka = await startKafka();
  await kafka.createTopic(EVENTS, { partitions: 2 });
  await kafka.createTopic(ITEMS, {
    partitions: 2,
    configs: { 'cleanup.policy': 'compact', 'max.message.bytes': '65536' },
  });
  await kafka.createTopic(LARGE, {
    partitions: 1,
    configs: { 'cleanup.policy': 'compact', 'max.message.bytes': String(4 * 1024 * 1024) },
  });
  stateDir = await mkdtemp(join(tmpdir(), 'kgate-north-kafka-it-'));
  const yaml = `
name: north-kafka-it
bindings:
  tcp:
    type: tcp
    kind: server
    options: { host: 127.0.0.1, port: 0 }
    exit: http
  http:
    type: http
    kind: server
    routes:
      - when: [{ headers: { ":path": "/events/*" } }]
        exit: sse
    exit: rest
  sse:
    type: sse
    kind: server
    exit: events
  events:
    type: sse-kafka
    kind: proxy
    routes:
      - when: [{ path: /events/none }]
        exit: north
        with: { topic: no-such-topic }
      - when: [{ path: /events/all }]
        exit: north
        with: { topic: ${EVENTS} }
      - when: [{ path: "/events/{id}" }]
        exit: north
        with:
          topic: ${EVENTS}
          filters: [{ key: "\${params.id}" }]
          event: { id: '["\${base64(key)}","\${etag}"]' }
  rest:
    type: http-kafka
    kind: proxy
    routes:
      - when: [{ method: GET, path: /items }]
        exit: north
        with: { capability: fetch, topic: ${ITEMS}, merge: { content-type: application/json } }
      - when: [{ method: GET, path: "/items/{id}" }]
        exit: north
        with: { capability: fetch, topic: ${ITEMS}, filters: [{ key: "\${params.id}" }] }
      - when: [{ method: PUT, path: "/items/{id}" }, { method: DELETE, path: "/items/{id}" }]
        exit: north
        with: { capability: produce, topic: ${ITEMS}, key: "\${params.id}", overrides: { source: kgate } }
      - when: [{ method: POST, path: /items }]
        exit: north
        with: { capability: produce, topic: ${ITEMS}, key: "\${idempotencyKey}", async: {} }
      - when: [{ method: GET, path: "/latest/{id}" }]
        exit: north
        with: { capability: fetch, topic: ${EVENTS}, filters: [{ key: "\${params.id}" }] }
      - when: [{ method: GET, path: "/large/{id}" }]
        exit: north
        with: { capability: fetch, topic: ${LARGE}, filters: [{ key: "\${params.id}" }] }
      - when: [{ method: PUT, path: "/large/{id}" }]
        exit: north
        with: { capability: produce, topic: ${LARGE}, key: "\${params.id}" }
      - when: [{ method: GET, path: /missing }]
        exit: north
        with: { capability: fetch, topic: no-such-topic }
  north:
    type: kafka
    kind: cache_client
    options: { topics: [{ name: ${EVENTS}, defaultOffset: historical }] }
    exit: cache
  cache: { type: kafka, kind: cache_server, exit: south }
  south: { type: kafka, kind: client, options: { servers: ["${kafka.bootstrap}"] } }
`;
  ({ engine, port } = await startYamlEngine(yaml, 'north-kafka-it.yaml', stateDir));
});

after(async () => {
  if (skip !== false) return;
  await engine?.stop(5_000);
  await kafka?.stop();
  if (stateDir !== undefined) await rm(stateDir, { recursive: true, force: true });
});

function url(path: string): string {
  return `http://127.0.0.1:${port}${path}`;
}

describe('sse-kafka and http-kafka through a real chain and broker', { skip }, () => {
  it('streams messages as events and resumes from Last-Event-ID without loss or duplicates', async () => {
    await kafka.produce(EVENTS, [
      { key: 'a', value: 'one', partition: 0 },
      { key: 'b', value: 'two', partition: 1 },
      { key: 'a', value: 'three', partition: 0 },
    ]);
    const first = await openEventStream(port, '/events/all');
    const got = await first.waitFor(3);
    assert.deepEqual(got.map((e) => e.data).sort(), ['one', 'three', 'two']);
    const lastId = got[2]?.id;
    assert.ok(lastId !== undefined && lastId !== '');
    first.close();

    await kafka.produce(EVENTS, [
      { key: 'b', value: 'four', partition: 1 },
      { key: 'a', value: null, partition: 0 },
      { key: 'c', value: 'five', partition: 0 },
    ]);
    const resumed = await openEventStream(port, '/events/all', lastId);
    const more = await resumed.waitFor(3);
    assert.deepEqual(more.map((e) => `${e.type ?? 'message'}:${e.data}`).sort(), [
      'delete:a',
      'message:five',
      'message:four',
    ]);
    // Nothing from before the resume point comes again.
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(resumed.events.length, 3);
    resumed.close();
  });

  it('filters by a path parameter and puts the key in the event id as configured', async () => {
    await kafka.produce(EVENTS, [
      { key: 'k1', value: 'for k1', partition: 0 },
      { key: 'k2', value: 'for k2', partition: 1 },
    ]);
    const stream = await openEventStream(port, '/events/k1');
    const [event] = await stream.waitFor(1);
    assert.equal(event?.data, 'for k1');
    const id = JSON.parse(event?.id ?? '') as unknown;
    assert.ok(Array.isArray(id));
    assert.equal(id[0], Buffer.from('k1').toString('base64'));
    await kafka.produce(EVENTS, [{ key: 'k1', value: 'again', partition: 1 }]);
    const [, second] = await stream.waitFor(2);
    assert.equal(second?.data, 'again');
    stream.close();
  });

  it('ends an event stream on an unknown topic with an error event', async () => {
    const res = await fetch(url('/events/none'), { headers: { accept: 'text/event-stream' } });
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.match(text, /event:error\ndata:topic no-such-topic: .+/);
  });

  it('produces with PUT, fetches one item and the merged list, honours ETag and DELETE', async () => {
    let res = await fetch(url('/items/1'), {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: 1, name: 'one' }),
    });
    assert.equal(res.status, 204);
    res = await fetch(url('/items/2'), {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: 2, name: 'two' }),
    });
    assert.equal(res.status, 204);

    res = await fetch(url('/items/1'));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/json');
    assert.deepEqual(await res.json(), { id: 1, name: 'one' });

    res = await fetch(url('/items'));
    assert.equal(res.status, 200);
    const etag = res.headers.get('etag');
    assert.ok(etag !== null);
    const list = (await res.json()) as { id: number }[];
    assert.deepEqual(list.map((i) => i.id).sort(), [1, 2]);

    res = await fetch(url('/items'), { headers: { 'if-none-match': etag } });
    assert.equal(res.status, 304);

    // A change wakes a waiting request before its wait is over.
    const started = Date.now();
    const waiting = fetch(url('/items'), { headers: { 'if-none-match': etag, prefer: 'wait=20' } });
    await new Promise((resolve) => setTimeout(resolve, 300));
    res = await fetch(url('/items/1'), { method: 'DELETE' });
    assert.equal(res.status, 204);
    res = await waiting;
    assert.equal(res.status, 200);
    assert.ok(Date.now() - started < 15_000);
    assert.notEqual(res.headers.get('etag'), etag);
    assert.deepEqual(
      ((await res.json()) as { id: number }[]).map((i) => i.id),
      [2],
    );

    res = await fetch(url('/items/1'));
    assert.equal(res.status, 404);
    await res.text();
  });

  it('fetches one item by key with ETag, waits and a copy produced to another partition', async () => {
    const id = 'keyed-1';
    let res = await fetch(url(`/items/${id}`), { method: 'PUT', body: JSON.stringify({ v: 1 }) });
    assert.equal(res.status, 204);
    res = await fetch(url(`/items/${id}`));
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { v: 1 });
    const etag = res.headers.get('etag') ?? '';
    assert.notEqual(etag, '');

    // Another key changing moves the ETag on but is no change of this item.
    res = await fetch(url('/items/keyed-other'), { method: 'PUT', body: '{}' });
    assert.equal(res.status, 204);
    res = await fetch(url(`/items/${id}`), { headers: { 'if-none-match': etag } });
    assert.equal(res.status, 304);
    const moved = res.headers.get('etag') ?? '';
    assert.notEqual(moved, '');

    // A record of the key produced to the partition its hash does not pick wakes a waiting GET.
    const elsewhere = 1 - partitionForKey(id, 2);
    const started = Date.now();
    const waiting = fetch(url(`/items/${id}`), { headers: { 'if-none-match': moved, prefer: 'wait=20' } });
    await new Promise((resolve) => setTimeout(resolve, 300));
    await kafka.produce(ITEMS, [{ key: id, value: JSON.stringify({ v: 2 }), partition: elsewhere }]);
    res = await waiting;
    assert.equal(res.status, 200);
    assert.ok(Date.now() - started < 15_000);
    assert.deepEqual(await res.json(), { v: 2 });
    const latest = res.headers.get('etag') ?? '';
    assert.ok(latest !== '' && latest !== moved);

    const idle = Date.now();
    res = await fetch(url(`/items/${id}`), { headers: { 'if-none-match': latest, prefer: 'wait=1' } });
    assert.equal(res.status, 304);
    assert.ok(Date.now() - idle >= 900);

    res = await fetch(url(`/items/${id}`), { method: 'DELETE' });
    assert.equal(res.status, 204);
    res = await fetch(url(`/items/${id}`));
    assert.equal(res.status, 404);
    await res.text();
  });

  it('answers 304 when a wait ends without a change', async () => {
    let res = await fetch(url('/items'));
    const etag = res.headers.get('etag') ?? '';
    await res.text();
    const started = Date.now();
    res = await fetch(url('/items'), { headers: { 'if-none-match': etag, prefer: 'wait=1' } });
    assert.equal(res.status, 304);
    assert.ok(Date.now() - started >= 900);
  });

  it('answers 202 to respond-async, uses the idempotency key, and refuses bodies over max.message.bytes', async () => {
    let res = await fetch(url('/items'), {
      method: 'POST',
      headers: { 'idempotency-key': 'idem-1', prefer: 'respond-async', 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'idem' }),
    });
    assert.equal(res.status, 202);
    res = await fetch(url('/items/idem-1'));
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { id: 'idem' });

    // Under the http server's body limit, over the topic's max.message.bytes (64 KiB).
    res = await fetch(url('/items/big'), { method: 'PUT', body: Buffer.alloc(100 * 1024, 0x61) });
    assert.equal(res.status, 413);
    const body = (await res.json()) as { message: string };
    assert.match(body.message, /max\.message\.bytes/);
  });

  it('with Prefer: wait, waits for a first match on a topic that is not compacted, else 404', async () => {
    const began = Date.now();
    const waiting = fetch(url('/latest/late'), { headers: { prefer: 'wait=20' } });
    await new Promise((resolve) => setTimeout(resolve, 300));
    await kafka.produce(EVENTS, [
      { key: 'other', value: 'not this one', partition: 0 },
      { key: 'late', value: 'arrived', partition: 1 },
    ]);
    const res = await waiting;
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'arrived');
    assert.ok(Date.now() - began < 15_000);

    const idle = Date.now();
    const absent = await fetch(url('/latest/never'), { headers: { prefer: 'wait=1' } });
    assert.equal(absent.status, 404);
    await absent.text();
    assert.ok(Date.now() - idle >= 900, `answered after ${Date.now() - idle} ms`);
  });

  it("takes bodies up to the topic's max.message.bytes, past the http server's 1 MiB, and refuses larger ones up front", async () => {
    const value = randomBytes(3 * 1024 * 1024);
    let res = await fetch(url('/large/announced'), { method: 'PUT', body: value });
    assert.equal(res.status, 204, await res.text());
    // Without a Content-Length the body streams in chunks and the topic's limit still holds.
    const chunked = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let at = 0; at < value.length; at += 256 * 1024)
          controller.enqueue(value.subarray(at, at + 256 * 1024));
        controller.close();
      },
    });
    res = await fetch(url('/large/chunked'), { method: 'PUT', body: chunked, duplex: 'half' } as RequestInit);
    assert.equal(res.status, 204, await res.text());
    for (const id of ['announced', 'chunked']) {
      res = await fetch(url(`/large/${id}`));
      assert.equal(res.status, 200);
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(value), `${id} read back byte for byte`);
    }

    // Announced past the limit: answered before the body is read, and the connection is not reused.
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest({
        host: '127.0.0.1',
        port,
        method: 'PUT',
        path: '/large/huge',
        agent: false,
        headers: { 'content-length': String(5 * 1024 * 1024) },
      });
      req.on('response', (response) => {
        let body = '';
        response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
        response.on('end', () => {
          resolve({ status: response.statusCode ?? 0, body });
          req.destroy();
        });
      });
      req.on('error', reject);
      req.write(Buffer.alloc(64 * 1024));
    });
    assert.equal(answer.status, 413);
    assert.match(
      (JSON.parse(answer.body) as { message: string }).message,
      /^message for topic large needs at least \d+ bytes, more than its max\.message\.bytes \(4194304\)$/,
    );
    res = await fetch(url('/large/huge'));
    assert.equal(res.status, 404);
    await res.text();
  });

  it('answers 404 with a clear JSON error for an unknown topic', async () => {
    const res = await fetch(url('/missing'));
    const body = (await res.json()) as { message: string };
    assert.equal(res.status, 404, body.message);
    assert.match(body.message, /no-such-topic/);
  });
});
