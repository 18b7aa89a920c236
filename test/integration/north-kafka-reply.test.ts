import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect as http2Connect, type IncomingHttpHeaders } from 'node:http2';
import { connect } from 'node:net';
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

/** Content types a reply may be asked for by name, for those a request body cannot carry. */
const REPLY_TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  crlf: 'application/json\r\nX-Injected: yes',
};

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
      // `status=N` and `type=name` ask for a reply with that :status and content-type header.
      const status = /status=(\S+)/.exec(value)?.[1] ?? (created ? '201' : undefined);
      const type = /type=(\S+)/.exec(value)?.[1];
      await kafka.produce(replyTo, [
        {
          key: message.key,
          value: JSON.stringify({ reply: value }),
          headers: {
            'x-correlation-id': cid,
            'content-type': type === undefined ? 'application/json' : (REPLY_TYPES[type] ?? type),
            ...(status === undefined ? {} : { ':status': status }),
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
    // Zilla's correlation id: the idempotency key (a fresh UUID here), `-`, the request's MD5.
    const match = /^\/items\/7;cid=([0-9a-f-]{36}-[0-9a-f]{32})$/.exec(location);
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
    assert.match(res.headers.get('location') ?? '', /^\/items\/8;cid=[0-9a-f-]{36}-[0-9a-f]{32}$/);
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
      assert.match(location, /^\/items\/9;cid=[0-9a-f-]{36}-[0-9a-f]{32}$/);
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

  it('answers 502 to a reply with an informational or invalid :status, and frames 204 and 304 without content, over HTTP/1.1', async () => {
    for (const status of ['100', '101', '103', 'nope']) {
      const answer = await rawPost('/sync', `status=${status}`);
      assert.match(answer.head, /^HTTP\/1\.1 502 Bad Gateway\r\n/, `${status}: ${answer.head}`);
      assert.match(answer.head, /\r\nx-content-type-options: nosniff\r\n/i);
      assert.match(answer.body, /the reply's :status \\".*\\" is not a final HTTP status/);
      assert.equal(answer.head.match(/^HTTP\//gm)?.length, 1, 'one response, no interim one');
    }
    for (const [status, line] of [
      ['204', 'HTTP/1.1 204 No Content'],
      ['304', 'HTTP/1.1 304 Not Modified'],
    ] as const) {
      const answer = await rawPost('/sync', `status=${status}`);
      assert.ok(answer.head.startsWith(`${line}\r\n`), answer.head);
      assert.doesNotMatch(answer.head, /\r\n(content-length|transfer-encoding|content-type):/i, answer.head);
      assert.equal(answer.body, '', 'no content');
    }
    const reset = await rawPost('/sync', 'status=205');
    assert.match(reset.head, /^HTTP\/1\.1 205 Reset Content\r\n/);
    assert.match(reset.head, /\r\ncontent-length: 0\r\n/i);
    assert.equal(reset.body, '');
  });

  it('answers the same over HTTP/2, and the session serves the next request', async () => {
    const session = http2Connect(`http://127.0.0.1:${port}`);
    try {
      const ask = async (body: string): Promise<{ headers: IncomingHttpHeaders; body: string }> => {
        const stream = session.request({ ':method': 'POST', ':path': '/sync' });
        stream.end(body);
        const [headers] = (await once(stream, 'response')) as [IncomingHttpHeaders];
        let text = '';
        for await (const chunk of stream) text += (chunk as Buffer).toString();
        return { headers, body: text };
      };
      for (const status of ['101', '103']) {
        const answer = await ask(`status=${status}`);
        assert.equal(answer.headers[':status'], 502, status);
        assert.equal(answer.headers['x-content-type-options'], 'nosniff');
      }
      for (const status of [204, 304]) {
        const answer = await ask(`status=${status}`);
        assert.equal(answer.headers[':status'], status);
        assert.equal(answer.headers['content-length'], undefined);
        assert.equal(answer.body, '');
      }
      const ok = await ask('after them');
      assert.equal(ok.headers[':status'], 200);
      assert.equal(ok.body, '{"reply":"after them"}');
    } finally {
      session.close();
    }
  });

  it("answers a reply's content type only when it is well formed and on the route list", async () => {
    for (const [body, type] of [
      ['type=html', 'application/octet-stream'],
      ['type=crlf', 'application/octet-stream'],
      ['type=text/plain', 'text/plain'],
    ] as const) {
      const res = await fetch(url('/sync'), { method: 'POST', body });
      assert.equal(res.status, 200, body);
      assert.equal(res.headers.get('content-type'), type, body);
      assert.equal(res.headers.get('x-injected'), null);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(await res.text(), JSON.stringify({ reply: body }));
    }
  });
});

/** A POST over its own connection, closed after the answer: the answer's head and body as sent. */
async function rawPost(path: string, body: string): Promise<{ head: string; body: string }> {
  const socket = connect(port, '127.0.0.1');
  socket.write(
    `POST ${path} HTTP/1.1\r\nHost: kgate\r\nConnection: close\r\nContent-Type: text/plain\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  let text = '';
  socket.setEncoding('latin1').on('data', (chunk: string) => (text += chunk));
  await once(socket, 'end');
  socket.destroy();
  const at = text.indexOf('\r\n\r\n');
  return { head: text.slice(0, at + 2), body: text.slice(at + 4) };
}
