import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { CacheClient } from '../../src/bindings/proxies/cache-clients.ts';
import { kafkaHeader } from '../../src/bindings/http-kafka/replies.ts';
import type { CacheStream } from '../../src/bindings/kafka/cache_client/index.ts';
import { startKafka, type KafkaCluster } from '../../src/embedded/kafka/index.ts';
import { Engine } from '../../src/engine/engine.ts';
import { startYamlEngine } from '../support/yaml-engine.ts';

let kafka: KafkaCluster;
let engine: Engine;
let stateDir: string;
let port: number;
let requests: CacheStream;
let responder: Promise<void>;
let yaml: string;
/** Requests the responder saw, by correlation id: what the gateway produced. */
const seen = new Map<string, { key: string | null; value: string; headers: Record<string, string> }>();

const REQUESTS = 'items-requests';
const REPLIES = 'items-responses';

before(async () => {
  kafka = await startKafka();
  await kafka.createTopic(REQUESTS, { partitions: 2 });
  await kafka.createTopic(REPLIES, { partitions: 2 });
  stateDir = await mkdtemp(join(tmpdir(), 'kgate-north-reply-it-'));
  yaml = `
name: north-kafka-reply-it
bindings:
  tcp:
    type: tcp
    kind: server
    options: { host: 127.0.0.1, port: 0 }
    exit: http
  http:
    type: http
    kind: server
    exit: rest
  rest:
    type: http-kafka
    kind: proxy
    options:
      correlation: { headers: { reply-to: "x-reply-to", correlation-id: "x-correlation-id" } }
    routes:
      - when: [{ path: /sync }]
        exit: north
        with: { capability: produce, topic: ${REQUESTS}, key: "\${correlationId}", reply-to: ${REPLIES} }
      - when: [{ method: PUT, path: "/items/{id}" }, { method: GET, path: "/items/{id};cid={correlationId}" }]
        exit: north
        with:
          capability: produce
          topic: ${REQUESTS}
          key: "\${params.id}"
          reply-to: ${REPLIES}
          async: { location: "/items/\${params.id};cid=\${correlationId}" }
  north: { type: kafka, kind: cache_client, exit: cache }
  cache: { type: kafka, kind: cache_server, options: { bootstrap: [${REPLIES}] }, exit: south }
  south: { type: kafka, kind: client, options: { servers: ["${kafka.bootstrap}"] } }
`;
  ({ engine, port } = await startYamlEngine(yaml, 'north-kafka-reply-it.yaml', stateDir));
  // The service on the far side: reads requests, answers each on the topic they name, with kcat.
  const north = engine.binding('north') as CacheClient | undefined;
  assert.ok(north !== undefined);
  requests = await north.open(REQUESTS, { defaultOffset: 'historical' });
  responder = (async () => {
    for await (const message of requests) {
      const cid = kafkaHeader(message, 'x-correlation-id');
      const replyTo = kafkaHeader(message, 'x-reply-to');
      const value = message.value?.toString('utf8') ?? '';
      const headers: Record<string, string> = {};
      for (const h of message.headers) headers[h.name.toString()] = h.value?.toString() ?? '';
      if (cid !== undefined) seen.set(cid, { key: message.key?.toString() ?? null, value, headers });
      if (cid === undefined || replyTo === undefined || value.includes('no reply')) continue;
      const delay = /delay=(\d+)/.exec(value)?.[1];
      if (delay !== undefined) await new Promise((resolve) => setTimeout(resolve, Number(delay)));
      const created = value.includes('create');
      await kafka.produce(replyTo, [
        {
          key: message.key,
          value: JSON.stringify({ reply: value }),
          headers: {
            'x-correlation-id': cid,
            'content-type': 'application/json',
            ...(created ? { ':status': '201' } : {}),
          },
        },
      ]);
    }
  })();
});

after(async () => {
  requests?.close();
  await responder?.catch(() => undefined);
  await engine?.stop(5_000);
  await kafka?.stop();
  if (stateDir !== undefined) await rm(stateDir, { recursive: true, force: true });
});

function url(path: string): string {
  return `http://127.0.0.1:${port}${path}`;
}

describe('http-kafka request-reply through a real chain and broker', () => {
  it('answers a synchronous request with the correlated reply', async () => {
    const res = await fetch(url('/sync'), {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'hello',
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/json');
    assert.equal(await res.text(), '{"reply":"hello"}');
    // The request carried the reply topic and a correlation id under the configured names.
    const [cid, request] = [...seen].find(([, r]) => r.value === 'hello') ?? [];
    assert.ok(cid !== undefined && request !== undefined);
    assert.equal(request.headers['x-reply-to'], REPLIES);
    assert.equal(request.headers['content-type'], 'text/plain');
    assert.equal(request.key, cid);
  });

  it('keeps concurrent requests apart and takes the status from the reply', async () => {
    const bodies = ['one delay=300', 'two create', 'three delay=100'];
    const responses = await Promise.all(bodies.map((body) => fetch(url('/sync'), { method: 'POST', body })));
    const got = await Promise.all(responses.map(async (r) => [r.status, await r.text()]));
    assert.deepEqual(got, [
      [200, '{"reply":"one delay=300"}'],
      [201, '{"reply":"two create"}'],
      [200, '{"reply":"three delay=100"}'],
    ]);
  });

  it('answers 504 when no reply comes within Prefer: wait', async () => {
    const started = Date.now();
    const res = await fetch(url('/sync'), {
      method: 'POST',
      headers: { prefer: 'wait=1' },
      body: 'no reply',
    });
    assert.equal(res.status, 504);
    await res.text();
    assert.ok(Date.now() - started >= 900, 'waited for the reply');
  });

  it('accepts an async request and serves the reply at its location', async () => {
    const res = await fetch(url('/items/7'), {
      method: 'PUT',
      headers: { prefer: 'respond-async', 'content-type': 'application/json' },
      body: '{"async":"delay=1000"}',
    });
    assert.equal(res.status, 202);
    assert.equal(await res.text(), '');
    const location = res.headers.get('location');
    assert.ok(location !== null);
    const match = /^\/items\/7;cid=([0-9a-f-]{36})$/.exec(location);
    assert.ok(match !== null, location);
    assert.equal(seen.get(match[1] ?? '')?.key ?? '7', '7');

    // Still pending: 202 again, pointing at itself.
    const pending = await fetch(url(location));
    assert.equal(pending.status, 202);
    assert.equal(pending.headers.get('location'), location);
    await pending.text();

    const ready = await fetch(url(location), { headers: { prefer: 'wait=10' } });
    assert.equal(ready.status, 200);
    assert.equal(ready.headers.get('content-type'), 'application/json');
    assert.equal(await ready.text(), '{"reply":"{\\"async\\":\\"delay=1000\\"}"}');
    // The reply stays for later polls (until it expires).
    const again = await fetch(url(location));
    assert.equal(again.status, 200);
    assert.equal(await again.text(), '{"reply":"{\\"async\\":\\"delay=1000\\"}"}');
  });

  it('falls back to 202 with the location when a sync wait on an async route runs out', async () => {
    const res = await fetch(url('/items/8'), {
      method: 'PUT',
      headers: { prefer: 'wait=1' },
      body: 'no reply',
    });
    assert.equal(res.status, 202);
    assert.match(res.headers.get('location') ?? '', /^\/items\/8;cid=[0-9a-f-]{36}$/);
    await res.text();
    const unknown = await fetch(url('/items/8;cid=unknown'));
    assert.equal(unknown.status, 202);
    await unknown.text();
  });

  it('answers a poll on another instance, which finds the reply on the reply topic', async () => {
    const otherDir = await mkdtemp(join(tmpdir(), 'kgate-north-reply-other-'));
    const other = await startYamlEngine(yaml, 'north-kafka-reply-other.yaml', otherDir);
    try {
      const res = await fetch(url('/items/9'), {
        method: 'PUT',
        headers: { prefer: 'respond-async', 'content-type': 'text/plain' },
        body: 'elsewhere delay=1500',
      });
      assert.equal(res.status, 202);
      await res.text();
      const location = res.headers.get('location') ?? '';
      assert.match(location, /^\/items\/9;cid=[0-9a-f-]{36}$/);
      const elsewhere = `http://127.0.0.1:${other.port}${location}`;

      // The reply is not there yet: the other instance waits for it on the topic.
      const started = Date.now();
      const waited = await fetch(elsewhere, { headers: { prefer: 'wait=20' } });
      assert.equal(waited.status, 200);
      assert.equal(waited.headers.get('content-type'), 'application/json');
      assert.equal(await waited.text(), '{"reply":"elsewhere delay=1500"}');
      assert.ok(Date.now() - started < 15_000);
      // Once there, it is found at once, and a correlation id nobody replied to stays 202.
      const again = await fetch(elsewhere);
      assert.equal(again.status, 200);
      assert.equal(await again.text(), '{"reply":"elsewhere delay=1500"}');
      const idle = Date.now();
      const none = await fetch(`http://127.0.0.1:${other.port}/items/9;cid=nobody`, {
        headers: { prefer: 'wait=1' },
      });
      assert.equal(none.status, 202);
      assert.equal(none.headers.get('location'), '/items/9;cid=nobody');
      await none.text();
      assert.ok(Date.now() - idle >= 900);
    } finally {
      await other.engine.stop(5_000);
      await rm(otherDir, { recursive: true, force: true });
    }
  });

  it('refuses GET on a request-reply route without a correlation id', async () => {
    const res = await fetch(url('/sync'));
    assert.equal(res.status, 405);
    await res.text();
  });
});
