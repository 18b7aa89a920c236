import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { HttpKafkaProxyBinding } from '../../src/bindings/http-kafka/proxy.ts';
import {
  ConnectionError,
  KafkaClientError,
  ProduceOutcomeUnknownError,
} from '../../src/bindings/kafka/client/errors.ts';
import { encodeBatch } from '../../src/bindings/kafka/client/protocol/records.ts';
import { decodeProgress, encodeProgress } from '../../src/bindings/proxies/progress-token.ts';
import type { RouteConfig } from '../../src/config/index.ts';
import { closeFakeTopics, FakeCacheServer, FakeTopic, fakeCacheClient } from '../support/fake-cache.ts';
import { injector, type InjectResponse, type Injector } from '../support/http-inject.ts';

// handleRequest driven through node:http over an in-memory socket pair, against a cache_client
// exit over fake topics that the tests feed: what a client of the http-kafka proxy gets, status
// by status, without a broker. The same behaviours run end to end in north-kafka.test.ts and
// examples-http.test.ts.

const JSON_TYPE: [string, string] = ['content-type', 'application/json'];

/** Compacted: GET /items/{id} pins the key and is answered from the key index. */
const items = new FakeTopic('items', { partitions: 2, compacted: true });
/** Not compacted: GET /latest/{id} reads a stream up to now. */
const events = new FakeTopic('events', { partitions: 2 });
/** Values stored with whatever content type their producer gave. */
const pages = new FakeTopic('pages', { partitions: 1, compacted: true });
/** Compacted, with partitions whose heads the cache's byte budget evicts. */
const archive = new FakeTopic('archive', { partitions: 2, compacted: true });
/** Not compacted, evicted the same way: GET /log/{id} reads a stream up to now. */
const log = new FakeTopic('log', { partitions: 1 });
const server = new FakeCacheServer(items, events, pages, archive, log);

const routes: RouteConfig[] = [
  {
    when: [{ method: 'GET', path: '/items' }],
    exit: 'north',
    with: { capability: 'fetch', topic: 'items', merge: { 'content-type': 'application/json' } },
  },
  {
    when: [{ method: 'GET', path: '/items/{id}' }],
    exit: 'north',
    with: { capability: 'fetch', topic: 'items', filters: [{ key: '${params.id}' }] },
  },
  {
    when: [
      { method: 'PUT', path: '/items/{id}' },
      { method: 'DELETE', path: '/items/{id}' },
    ],
    exit: 'north',
    with: { capability: 'produce', topic: 'items', key: '${params.id}', overrides: { source: 'kgate' } },
  },
  {
    when: [{ method: 'GET', path: '/latest/{id}' }],
    exit: 'north',
    with: { capability: 'fetch', topic: 'events', filters: [{ key: '${params.id}' }] },
  },
  {
    when: [{ method: 'GET', path: '/pages/{id}' }],
    exit: 'north',
    with: { capability: 'fetch', topic: 'pages', filters: [{ key: '${params.id}' }] },
  },
  {
    when: [{ method: 'GET', path: '/archive' }],
    exit: 'north',
    with: { capability: 'fetch', topic: 'archive', merge: { 'content-type': 'application/json' } },
  },
  {
    when: [{ method: 'GET', path: '/archive/{id}' }],
    exit: 'north',
    with: { capability: 'fetch', topic: 'archive', filters: [{ key: '${params.id}' }] },
  },
  {
    when: [{ method: 'GET', path: '/log/{id}' }],
    exit: 'north',
    with: { capability: 'fetch', topic: 'log', filters: [{ key: '${params.id}' }] },
  },
  {
    when: [{ method: 'GET', path: '/html/{id}' }],
    exit: 'north',
    with: {
      capability: 'fetch',
      topic: 'pages',
      filters: [{ key: '${params.id}' }],
      'content-types': ['text/html', 'application/*+json'],
    },
  },
];

const metrics = new Registry();
const proxy = new HttpKafkaProxyBinding({
  config: { name: 'rest', type: 'http-kafka', kind: 'proxy', options: {}, routes },
  logger: pino({ level: 'silent' }),
  metrics,
  stateDir: '/nonexistent',
  lookup: () => fakeCacheClient('north', server),
});
let http: Injector;

before(async () => {
  await proxy.start(AbortSignal.timeout(1_000));
  http = injector(proxy);
});

after(async () => {
  http.close();
  await proxy.stop(AbortSignal.timeout(1_000));
  await closeFakeTopics();
});

const get = (path: string, headers: Record<string, string> = {}): Promise<InjectResponse> =>
  http.inject({ path, headers });

/** What the cache would hold once the broker had the record: appended to the key's partition 0. */
function write(topic: FakeTopic, key: string, value: string | null, partition = 0): void {
  topic.put(partition, key, value, value === null ? {} : { headers: [header(...JSON_TYPE)] });
}

function header(name: string, value: string): { name: Buffer; value: Buffer } {
  return { name: Buffer.from(name), value: Buffer.from(value) };
}

function etagOf(res: InjectResponse): string {
  const etag = res.headers.etag;
  assert.ok(etag !== undefined && etag !== '', 'an ETag');
  return etag;
}

/** Every attachment a request took is given back by the time it is answered. */
function assertReleased(): void {
  assert.equal(items.released, items.attached, 'items attachments released');
  assert.equal(events.released, events.attached, 'events attachments released');
  assert.equal(archive.released, archive.attached, 'archive attachments released');
}

describe('http-kafka proxy handleRequest, without a broker', () => {
  it('answers a fetch with its ETag, and 304 to If-None-Match until a matching record arrives', async () => {
    write(items, '1', '{"id":1}');
    write(items, '2', '{"id":2}', 1);

    const one = await get('/items/1');
    assert.equal(one.status, 200);
    assert.equal(one.headers['content-type'], 'application/json');
    assert.equal(one.text, '{"id":1}');
    const tag = etagOf(one);
    const same = await get('/items/1', { 'if-none-match': tag });
    assert.equal(same.status, 304);
    assert.equal(same.text, '');
    assert.equal(etagOf(same), tag);

    // Another key moves the ETag on but is no change of this item.
    write(items, '3', '{"id":3}');
    const moved = await get('/items/1', { 'if-none-match': tag });
    assert.equal(moved.status, 304);
    assert.notEqual(etagOf(moved), tag);
    write(items, '1', '{"id":1,"v":2}', 1);
    const changed = await get('/items/1', { 'if-none-match': etagOf(moved) });
    assert.equal(changed.status, 200);
    assert.equal(changed.text, '{"id":1,"v":2}');

    const list = await get('/items');
    assert.equal(list.status, 200);
    assert.equal(list.headers['content-type'], 'application/json');
    assert.deepEqual((JSON.parse(list.text) as { id: number }[]).map((item) => item.id).sort(), [1, 2, 3]);
    const listTag = etagOf(list);
    // A merged route's 304 carries the Content-Type its 200 has, as Zilla's does; a single one has none to give.
    const unchangedList = await get('/items', { 'if-none-match': listTag });
    assert.equal(unchangedList.status, 304);
    assert.equal(unchangedList.headers['content-type'], 'application/json');
    const anyList = await get('/items', { 'if-none-match': '*' });
    assert.equal(anyList.status, 304);
    assert.equal(anyList.headers['content-type'], 'application/json');
    assert.equal(same.headers['content-type'], undefined);
    write(items, '2', null, 1);
    const shorter = await get('/items', { 'if-none-match': listTag });
    assert.equal(shorter.status, 200);
    assert.deepEqual((JSON.parse(shorter.text) as { id: number }[]).map((item) => item.id).sort(), [1, 3]);
    assertReleased();
  });

  it('with Prefer: wait, answers as soon as a matching record arrives', async () => {
    const listTag = etagOf(await get('/items'));
    const itemTag = etagOf(await get('/items/1'));
    const began = Date.now();
    const list = get('/items', { 'if-none-match': listTag, prefer: 'wait=20' });
    const item = get('/items/1', { 'if-none-match': itemTag, prefer: 'wait=20' });
    const first = get('/latest/late', { prefer: 'wait=20' });
    await new Promise((resolve) => setTimeout(resolve, 100));
    write(items, '4', '{"id":4}', 1);
    write(items, '1', '{"id":1,"v":3}');
    write(events, 'other', 'not this one');
    write(events, 'late', 'arrived', 1);

    const listed = await list;
    assert.equal(listed.status, 200);
    assert.notEqual(etagOf(listed), listTag);
    assert.ok((JSON.parse(listed.text) as { id: number }[]).some((entry) => entry.id === 4));
    const one = await item;
    assert.equal(one.status, 200);
    assert.equal(one.text, '{"id":1,"v":3}');
    const late = await first;
    assert.equal(late.status, 200);
    assert.equal(late.text, 'arrived');
    // Woken by the records, not by the end of their 20 s wait.
    assert.ok(Date.now() - began < 10_000, `answered after ${Date.now() - began} ms`);
    assertReleased();
  });

  it('with Prefer: wait and no change, answers 304, or 404 for what never matched, when the wait ends', async () => {
    const listTag = etagOf(await get('/items'));
    const itemTag = etagOf(await get('/items/1'));
    for (const [path, tag] of [
      ['/items', listTag],
      ['/items/1', itemTag],
    ] as const) {
      const began = Date.now();
      const res = await get(path, { 'if-none-match': tag, prefer: 'wait=1' });
      assert.equal(res.status, 304, path);
      assert.ok(Date.now() - began >= 900, `${path} answered after ${Date.now() - began} ms`);
    }
    for (const path of ['/latest/never', '/items/never']) {
      const began = Date.now();
      const res = await get(path, { prefer: 'wait=1' });
      assert.equal(res.status, 404, path);
      assert.ok(Date.now() - began >= 900, `${path} answered after ${Date.now() - began} ms`);
    }
    assertReleased();
  });

  it('answers a made-up If-None-Match in full, with an ETag of the topic, instead of 304 for good', async () => {
    const forgeries = [
      // An offset no record will reach.
      new Map([
        [0, 2n ** 62n],
        [1, 0n],
      ]),
      // A partition the topic does not have, of the size a header can carry.
      new Map(Array.from({ length: 500 }, (_, i) => [i, 1n] as [number, bigint])),
    ];
    for (const forged of forgeries) {
      const tag = `"${encodeProgress(forged)}"`;
      for (const path of ['/items', '/items/1', '/latest/late']) {
        const began = Date.now();
        const res = await get(path, { 'if-none-match': tag, prefer: 'wait=20' });
        assert.ok(res.status === 200 || res.status === 404, `${path}: ${res.status}`);
        // Answered at once: the tag matches nothing, so there is nothing to wait for a change of.
        assert.ok(Date.now() - began < 5_000, `${path} answered after ${Date.now() - began} ms`);
        if (res.status !== 200) continue;
        const progress = decodeProgress(etagOf(res).slice(1, -1));
        assert.ok(progress !== undefined, `${path}: the ETag is a progress token`);
        const topic = path.startsWith('/items') ? items : events;
        assert.deepEqual(
          [...progress.keys()].sort(),
          topic.partitions(),
          `${path}: only the topic's partitions`,
        );
        for (const [partition, offset] of progress)
          assert.ok(
            offset <= topic.store(partition).nextOffset,
            `${path}: partition ${partition} within its end`,
          );
      }
    }
    assertReleased();
  });

  it('answers 404 for a key with no record and for a path no route takes', async () => {
    write(items, 'gone', '{}');
    write(items, 'gone', null);
    for (const path of ['/items/unknown', '/items/gone', '/latest/unknown']) {
      const res = await get(path);
      assert.equal(res.status, 404, path);
      assert.equal(res.headers['content-type'], 'application/json');
      const topic = path.startsWith('/items') ? 'items' : 'events';
      assert.deepEqual(JSON.parse(res.text), {
        status: 404,
        error: 'Not Found',
        message: `no message in topic ${topic} matches`,
      });
    }
    const nowhere = await get('/nowhere');
    assert.equal(nowhere.status, 404);
    assert.equal((JSON.parse(nowhere.text) as { message: string }).message, 'no route for GET /nowhere');
    assertReleased();
  });

  it('reads a request target that starts with // as a path, not as a host and another path', async () => {
    write(items, 'k', '{}');
    // A URL parser given `//x/items` relative to a base reads host `x`, path `/items`; `//` threw.
    for (const path of ['//', '//x/items', '//items']) {
      const res = await get(path);
      assert.equal(res.status, 404, path);
      assert.equal((JSON.parse(res.text) as { message: string }).message, `no route for GET ${path}`);
    }
    assertReleased();
  });

  it('marks answers read from a cache the byte budget evicted from: 203 for a merged list, 507 for no match', async () => {
    for (const key of ['a', 'b', 'c']) write(archive, key, JSON.stringify(key), 0);
    write(archive, 'd', '"d"', 1);
    write(log, 'x', '"x"');
    write(log, 'y', '"y"');
    let res = await get('/archive');
    assert.equal(res.status, 200);
    assert.equal(res.headers['kgate-partial'], undefined);

    // The budget drops the two oldest records of partition 0 ('a', 'b'), which Kafka still holds.
    await archive.store(0).evictBefore(2n);
    await log.store(0).evictBefore(1n);
    res = await get('/archive');
    assert.equal(res.status, 203, 'a merged list missing evicted keys says so');
    assert.equal(res.headers['kgate-partial'], '0:2');
    assert.deepEqual((JSON.parse(res.text) as string[]).sort(), ['c', 'd']);
    etagOf(res);
    for (const path of ['/archive/a', '/log/x']) {
      res = await get(path);
      assert.equal(res.status, 507, `${path}: absent from the cache, maybe not from Kafka`);
      assert.equal(res.headers['kgate-partial'], path === '/log/x' ? '0:1' : '0:2');
      const body = JSON.parse(res.text) as { status: number; error: string; message: string };
      assert.equal(body.error, 'Insufficient Storage');
      assert.match(body.message, /evicted records Kafka may still hold/);
    }
    // What the cache holds is the latest of its key: answered as usual.
    for (const [path, value] of [
      ['/archive/c', '"c"'],
      ['/archive/d', '"d"'],
      ['/log/y', '"y"'],
    ] as const) {
      res = await get(path);
      assert.equal(res.status, 200, path);
      assert.equal(res.text, value);
      assert.equal(res.headers['kgate-partial'], undefined);
    }
    const counted = await metrics.getSingleMetricAsString('kgate_http_kafka_partial_answers_total');
    assert.match(counted, /status="203"} 1$/m);
    assert.match(counted, /status="507"} 2$/m);

    // Once Kafka's log start passes what was evicted, the cache is whole again.
    archive.store(0).sourceLogStart(2n);
    res = await get('/archive');
    assert.equal(res.status, 200);
    assert.equal(res.headers['kgate-partial'], undefined);
    res = await get('/archive/a');
    assert.equal(res.status, 404);
    assertReleased();
  });

  it('answers 405 with Allow for a known path and another method', async () => {
    const list = await http.inject({ method: 'PUT', path: '/items', body: '{}' });
    assert.equal(list.status, 405);
    assert.equal(list.headers.allow, 'GET, HEAD');
    assert.deepEqual(JSON.parse(list.text), {
      status: 405,
      error: 'Method Not Allowed',
      message: '/items takes GET, HEAD, not PUT',
    });
    const item = await http.inject({ method: 'POST', path: '/items/1', body: '{}' });
    assert.equal(item.status, 405);
    assert.equal(item.headers.allow, 'GET, HEAD, PUT, DELETE');
    assert.equal(server.produced.length, 0);
  });

  it('answers HEAD from the GET route, headers without the body', async () => {
    const full = await get('/items/1');
    const head = await http.inject({ method: 'HEAD', path: '/items/1' });
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(full.body.length));
    assert.equal(head.headers['content-type'], 'application/json');
    assert.equal(head.headers.etag, full.headers.etag);
    assert.equal(head.body.length, 0);
    assertReleased();
  });

  it('produces PUT and DELETE with the route key and overrides, and answers 204', async () => {
    const put = await http.inject({
      method: 'PUT',
      path: '/items/7',
      headers: { 'content-type': 'application/json' },
      body: '{"id":7}',
    });
    assert.equal(put.status, 204);
    assert.equal(put.text, '');
    const del = await http.inject({ method: 'DELETE', path: '/items/7' });
    assert.equal(del.status, 204);
    const [written, deleted] = server.produced.splice(0);
    assert.equal(written?.topic, 'items');
    assert.deepEqual(written?.records, [
      {
        key: '7',
        value: Buffer.from('{"id":7}'),
        // Headers in order, as a list: a request's may repeat.
        headers: [
          { key: 'content-type', value: Buffer.from('application/json') },
          { key: 'source', value: Buffer.from('kgate') },
        ],
      },
    ]);
    assert.deepEqual(deleted?.records, [
      { key: '7', value: null, headers: [{ key: 'source', value: Buffer.from('kgate') }] },
    ]);
    assertReleased();
  });

  it('answers 504 with Kgate-Outcome: unknown and where to look when the message may have been written', async () => {
    const lost = new ConnectionError('connection to 127.0.0.1:9092 closed');
    server.failures.push(
      new ProduceOutcomeUnknownError('items', 1, 41n, 'produce to items-1: sent, outcome not known', {
        cause: lost,
      }),
    );
    const unknown = await http.inject({
      method: 'PUT',
      path: '/items/9',
      headers: { 'idempotency-key': 'key-9' },
      body: '{"id":9}',
    });
    assert.equal(unknown.status, 504);
    assert.equal(unknown.headers['kgate-outcome'], 'unknown');
    assert.equal(unknown.headers['idempotency-key'], 'key-9');
    assert.equal(unknown.headers['kgate-partition'], '1');
    assert.equal(unknown.headers['kgate-offset-from'], '41');
    assert.match(
      (JSON.parse(unknown.text) as { message: string }).message,
      /whether Kafka wrote it is not known: look for it in partition 1 from offset 41 before sending it again/,
    );
    // Certainly not written stays a plain 503, which a client may retry.
    server.failures.push(
      new KafkaClientError('produce to items-0 gave up at its deadline, not written', true),
    );
    const failed = await http.inject({ method: 'PUT', path: '/items/9', body: '{"id":9}' });
    assert.equal(failed.status, 503);
    assert.equal(failed.headers['kgate-outcome'], undefined);
    assert.equal(server.produced.length, 0);
    assertReleased();
  });

  // Bounded: a proxy that read the body instead would wait for bytes that never come.
  it(
    "answers 413 before reading a body whose Content-Length is past the topic's max.message.bytes",
    { timeout: 10_000 },
    async () => {
      const res = await http.inject({
        method: 'PUT',
        path: '/items/big',
        headers: { 'content-length': '2000' },
        body: Buffer.alloc(10, 0x61),
        partial: true,
      });
      assert.equal(res.status, 413);
      assert.equal(res.headers.connection, 'close');
      const body = JSON.parse(res.text) as { status: number; error: string; message: string };
      assert.deepEqual({ ...body, message: '' }, { status: 413, error: 'Payload Too Large', message: '' });
      assert.match(
        body.message,
        /^message for topic items needs at least 2\d{3} bytes, more than its max\.message\.bytes \(1024\)$/,
      );
      assert.equal(server.produced.length, 0);
      assertReleased();
    },
  );

  it("takes the largest body whose record batch fits the topic's max.message.bytes, and refuses one byte more", async () => {
    // What a broker compares with max.message.bytes: the batch this record makes, header and all.
    const headers = { 'content-type': 'text/plain', source: 'kgate' };
    const batch = (size: number): number =>
      encodeBatch([{ key: 'edge', value: Buffer.alloc(size), headers }], {
        producerId: 0n,
        producerEpoch: 0,
        baseSequence: 0,
        compression: 'none',
        now: 0,
      }).length;
    // Near 1 KiB both the value's and the record's varint lengths take two bytes instead of one.
    const largest = 1024 - batch(0) - 2;
    assert.equal(batch(largest), 1024);
    for (const [size, status] of [
      [largest, 204],
      [largest + 1, 413],
    ] as const) {
      const res = await http.inject({
        method: 'PUT',
        path: '/items/edge',
        headers: { 'content-type': 'text/plain' },
        body: Buffer.alloc(size, 0x61),
      });
      assert.equal(res.status, status, `${size} bytes: ${res.text}`);
    }
    const [written] = server.produced.splice(0);
    assert.equal((written?.records[0]?.value as Buffer).length, largest);
    assertReleased();
  });

  it('answers a stored content type only when it is well formed and on the route list', async () => {
    const page = (key: string, contentType: string): void => {
      pages.put(0, key, `<script>alert("${key}")</script>`, {
        headers: [header('content-type', contentType)],
      });
    };
    page('html', 'text/html; charset=utf-8');
    page('svg', 'image/svg+xml');
    page('json', 'application/json; charset=utf-8');
    page('crlf', 'text/plain\r\nX-Injected: yes');
    page('nul', 'application/json\u0000');
    pages.put(0, 'bare', 'no type', { headers: [] });
    for (const [path, type] of [
      ['/pages/html', 'application/octet-stream'],
      ['/pages/svg', 'application/octet-stream'],
      ['/pages/json', 'application/json; charset=utf-8'],
      ['/pages/crlf', 'application/octet-stream'],
      ['/pages/nul', 'application/octet-stream'],
      // The route lists text/html: the operator chose to serve pages from this topic.
      ['/html/html', 'text/html; charset=utf-8'],
      ['/html/svg', 'application/octet-stream'],
      ['/html/json', 'application/octet-stream'],
      // A record without a content-type header is answered without one, as Zilla answers it.
      ['/pages/bare', undefined],
    ] as const) {
      const res = await get(path);
      assert.equal(res.status, 200, `${path}: ${res.text}`);
      assert.equal(res.headers['content-type'], type, path);
      assert.equal(res.headers['x-injected'], undefined);
    }
    const counted = await metrics.getSingleMetricAsString('kgate_http_kafka_content_types_replaced_total');
    assert.match(counted, /reason="invalid"} 2$/m);
    assert.match(counted, /reason="not_allowed"} 4$/m);
    assertReleased();
  });
});
