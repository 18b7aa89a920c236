import { strict as assert } from 'node:assert';
import { connect as http2Connect, constants as http2, type ClientHttp2Session } from 'node:http2';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { pino } from 'pino';
import { HttpKafkaProxyBinding } from '../../src/bindings/http-kafka/proxy.ts';
import { HttpServerBinding } from '../../src/bindings/http/server.ts';
import { encodeProgress } from '../../src/bindings/proxies/progress-token.ts';
import { SseKafkaProxyBinding } from '../../src/bindings/sse-kafka/proxy.ts';
import { SseServerBinding } from '../../src/bindings/sse/server.ts';
import { createTcpServerBinding, TcpServerBinding } from '../../src/bindings/tcp/server.ts';
import type { BindingConfig, LoadedConfig } from '../../src/config/index.ts';
import type { Binding, BindingContext } from '../../src/engine/binding.ts';
import { Engine } from '../../src/engine/engine.ts';
import { BindingRegistry } from '../../src/engine/registry.ts';
import { closeFakeTopics, FakeCacheServer, FakeTopic, fakeCacheClient } from '../support/fake-cache.ts';
import { fuzzParameters, mutated } from '../support/fuzz.ts';

// Request heads fuzzed through the real server: a tcp server, the http server (HTTP/1.1 and h2c,
// CORS) and behind it the http-kafka proxy and the sse server with the sse-kafka proxy, over fake
// topics. Each input goes over a loopback connection of its own. Whatever it is, the server must
// answer with a well-formed status line or close the connection, never with a 500 or a stack
// trace, and never keep the connection past a deadline once the client has stopped sending.
// Inputs are well-formed requests with hostile parts (paths, versions, If-None-Match, Prefer,
// Last-Event-ID, Accept, Origin, Content-Length), those with bytes edited at random, and garbage.

const items = new FakeTopic('items', { partitions: 2, compacted: true });
const events = new FakeTopic('events', { partitions: 2 });
const cache = new FakeCacheServer(items, events);

const logLines: { level: number; msg: string }[] = [];
const logger = pino(
  { level: 'info' },
  new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n'))
        if (line !== '') logLines.push(JSON.parse(line) as { level: number; msg: string });
      callback();
    },
  }),
);

function binding(
  name: string,
  type: string,
  kind: string,
  options: Record<string, unknown>,
  exit?: string,
  routes: BindingConfig['routes'] = [],
): BindingConfig {
  return { name, type, kind, options, routes, ...(exit === undefined ? {} : { exit }) };
}

const bindings: BindingConfig[] = [
  binding('north', 'kafka', 'cache_client', {}),
  binding('rest', 'http-kafka', 'proxy', {}, undefined, [
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
      with: { capability: 'produce', topic: 'items', key: '${params.id}' },
    },
    {
      when: [{ method: 'POST', path: '/orders/{id};cid={cid}' }],
      exit: 'north',
      with: {
        capability: 'produce',
        topic: 'events',
        key: '${params.id}',
        async: { location: '/orders/${params.cid}' },
      },
    },
  ]),
  binding('events', 'sse-kafka', 'proxy', {}, undefined, [
    { when: [{ path: '/events' }], exit: 'north', with: { topic: 'events' } },
    {
      when: [{ path: '/events/{id}' }],
      exit: 'north',
      with: {
        topic: 'items',
        filters: [{ key: '${params.id}' }],
        event: { id: '["${base64(key)}","${etag}"]' },
      },
    },
  ]),
  binding('north_sse', 'sse', 'server', {}, 'events'),
  binding(
    'north_http',
    'http',
    'server',
    { 'access-control': { policy: 'cross-origin', allow: { origins: ['https://app.example'] } } },
    'rest',
    [{ when: [{ headers: { ':path': '/events*' } }], exit: 'north_sse' }],
  ),
  binding('north_tcp', 'tcp', 'server', { host: '127.0.0.1', port: 0 }, 'north_http'),
];

/** Gives a binding the name and config the engine expects of what a factory returns. */
function named(context: BindingContext, made: Omit<Binding, 'name'> & Partial<Binding>): Binding {
  return Object.assign(made, { name: context.config.name, config: context.config });
}

const registry = new BindingRegistry()
  .register('tcp', 'server', createTcpServerBinding)
  // A short headers deadline, so a head that never ends is answered 408 within a run.
  .register(
    'http',
    'server',
    (ctx) => new HttpServerBinding(ctx, { maxHeaderBytes: 4096, headersTimeoutMs: 1000 }),
  )
  .register('sse', 'server', (ctx) => new SseServerBinding(ctx))
  .register('http-kafka', 'proxy', (ctx) => new HttpKafkaProxyBinding(ctx))
  .register('sse-kafka', 'proxy', (ctx) => new SseKafkaProxyBinding(ctx))
  .register('kafka', 'cache_client', (ctx) => named(ctx, fakeCacheClient(ctx.config.name, cache)));

const config: LoadedConfig = {
  file: 'fuzz.yaml',
  name: 'fuzz',
  bindings: new Map(bindings.map((b) => [b.name, b])),
  warnings: [],
};

let engine: Engine;
let port: number;
/** The progress of `items` now, as its ETag and event ids carry it. */
let itemsToken: string;

before(async () => {
  for (let i = 0; i < 5; i++) {
    items.put(i % 2, `k${i}`, JSON.stringify({ i }), {
      headers: [{ name: Buffer.from('content-type'), value: Buffer.from('application/json') }],
    });
    events.put(i % 2, `e${i}`, `event ${i}`);
  }
  itemsToken = encodeProgress(
    new Map([
      [0, 3n],
      [1, 2n],
    ]),
  );
  engine = new Engine(config, registry, { logger, stateDir: '/nonexistent', startTimeoutMs: 10_000 });
  await engine.start();
  const tcp = engine.binding('north_tcp');
  assert.ok(tcp instanceof TcpServerBinding);
  port = tcp.ports[0] ?? 0;
});

after(async () => {
  // Event streams the fuzzer opened are cut short rather than drained.
  await engine.stop(500);
  await closeFakeTopics();
});

/** What came back for one input: the bytes, and whether the server closed in time. */
interface Exchange {
  readonly response: string;
  readonly closed: boolean;
}

/** Time allowed for an answer to a complete head before the client stops sending (half-closes). */
const ANSWER_MS = 2_000;
/** Time allowed, once the client has half-closed, for the server to close. */
const CLOSE_MS = 3_000;

/**
 * Sends `bytes` on a fresh connection. A complete head gets ANSWER_MS to be answered (then the
 * client hangs up, having seen the status line); anything else is followed by the client's FIN
 * at once. Either way the server then has CLOSE_MS to close.
 */
function exchange(bytes: Buffer, complete: boolean): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let settled = false;
    let closeTimer: NodeJS.Timeout | undefined;
    const done = (closed: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(answerTimer);
      clearTimeout(closeTimer);
      socket.destroy();
      resolve({ response: Buffer.concat(chunks).toString('latin1'), closed });
    };
    const hangUp = (): void => {
      if (closeTimer !== undefined) return;
      socket.end();
      closeTimer = setTimeout(() => done(false), CLOSE_MS);
    };
    socket.on('error', () => done(true));
    socket.on('close', () => done(true));
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      // A status line and its headers are enough: the body may be an endless event stream.
      if (Buffer.concat(chunks).includes('\r\n\r\n')) done(true);
    });
    socket.write(bytes);
    const answerTimer = setTimeout(hangUp, complete ? ANSWER_MS : 0);
  });
}

const PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';
const STATUS_LINE = /^HTTP\/1\.1 [1-5]\d\d [^\r\n]*\r\n/;
const STACK_FRAME = /\n\s+at .+:\d+:\d+/;

function checkAnswer(sent: string, { response, closed }: Exchange): void {
  assert.ok(closed, 'the server kept the connection open past the deadline');
  if (response === '' || sent.startsWith(PREFACE)) return;
  assert.match(response, STATUS_LINE, 'not an HTTP/1.1 status line');
  assert.doesNotMatch(response, /^HTTP\/1\.1 500 /, 'answered 500');
  assert.doesNotMatch(response, STACK_FRAME, 'a stack trace went out');
}

const token = fc.string({ unit: fc.constantFrom(...'abcXYZ019-_.~!'), minLength: 1, maxLength: 8 });
const escapes = [
  '%zz',
  '%',
  '%2',
  '%41',
  '%2F',
  '%2f',
  '%25',
  '%C0%AF',
  '%ED%A0%80',
  '%E9',
  '%C3%A9',
  '%00',
  '%0D%0A',
];
const pathSegment = fc.oneof(
  token,
  fc.constantFrom(...escapes, '..', '.', '', ';cid=1', '{id}', '*', 'é', '\u00ff'),
  fc.string({ unit: fc.constantFrom(...'ab/;%.?#&=', ...escapes), maxLength: 6 }),
);
const path = fc.oneof(
  fc
    .tuple(
      fc.constantFrom('/items', '/events', '/orders', '/latest', '', '/x'),
      fc.array(pathSegment, { maxLength: 3 }),
    )
    .map(([root, segments]) => [root, ...segments].join('/') || '/'),
  fc.constantFrom('*', 'http://app.example/items', '/items?x=%zz', '/events?lastEventId=%zz', '//'),
);
const version = fc.oneof(
  { weight: 8, arbitrary: fc.constant(' HTTP/1.1') },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      ' HTTP/1.0',
      ' HTTP/2.0',
      '',
      ' HTTP/0.9',
      ' HTTP/1.2',
      ' HTTP/9.9',
      ' http/1.1',
      ' HTTP/1.1 x',
    ),
  },
);
const method = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'OPTIONS', 'PATCH') },
  { weight: 1, arbitrary: fc.constantFrom('get', 'PRI', 'CONNECT', 'TRACE', 'X-Y', 'G\u00e9T') },
);
/** Header values over the bytes their parsers split on, with valid tokens mixed in. */
function headerText(units: readonly string[]): fc.Arbitrary<string> {
  return fc.string({ unit: fc.constantFrom(...units), maxLength: 60 });
}
const header = fc.oneof(
  headerText([...'"W/,* \t!', 'AZaz09-_'.slice(0, 4), '"AAAA"', 'W/"x"']).map((v) => `If-None-Match: ${v}`),
  fc.constantFrom('If-None-Match: "@"', 'If-None-Match: *').map((v) => v.replace('@', '')),
  fc.constant('').map(() => `If-None-Match: "${itemsToken}"`),
  headerText([...'wait=respond-async;,"01 \t', 'wait=1', 'wait=0']).map((v) => `Prefer: ${v}`),
  headerText([...'["],:', 'AZaz09-_+/=', '${etag}']).map((v) => `Last-Event-ID: ${v}`),
  fc.constant('').map(() => `Last-Event-ID: ["a2V5","${itemsToken}"]`),
  fc
    .constantFrom('text/event-stream', 'text/*;q=0', '*/*', 'application/json', '', ',,;;')
    .map((v) => `Accept: ${v}`),
  fc
    .constantFrom('https://app.example', 'null', 'http://evil.example', 'not a url', '%zz')
    .map((v) => `Origin: ${v}`),
  fc.constantFrom('GET', 'PUT', 'x').map((v) => `Access-Control-Request-Method: ${v}`),
  fc
    .constantFrom('0', '3', '-1', '1e3', '99999999999999999999', 'abc', '3, 3', '3,4')
    .map((v) => `Content-Length: ${v}`),
  fc
    .constantFrom('chunked', 'gzip, chunked', 'identity', 'chunked, chunked')
    .map((v) => `Transfer-Encoding: ${v}`),
  fc
    .constantFrom('application/json', 'text/html', 'a/b; charset="x', '\u00e9')
    .map((v) => `Content-Type: ${v}`),
  fc.constantFrom('localhost', '', 'a:b:c', '[::1]', 'app.example').map((v) => `Host: ${v}`),
  fc.constantFrom(
    'Idempotency-Key: k1',
    'Connection: close',
    'Connection: upgrade',
    'Upgrade: h2c',
    'Expect: 100-continue',
    ': x',
    'X: \u00ff',
  ),
);

/**
 * A request head with hostile parts, ending in its blank line, maybe followed by a body. It is
 * complete (nothing more for the server to wait for) unless a generated header announces a body.
 */
const request = fc
  .tuple(
    method,
    path,
    version,
    fc.array(header, { maxLength: 6 }),
    fc.option(fc.string({ maxLength: 8 }), { freq: 4 }),
  )
  .map(([m, p, v, headers, body]) => {
    // HTTP/1.1 requires a Host; most heads get one, so they reach the routes.
    const host = headers.some((h) => h.startsWith('Host:')) ? [] : ['Host: localhost'];
    const head = `${m} ${p}${v}\r\n${[...host, ...headers].map((h) => `${h}\r\n`).join('')}`;
    const text =
      body === null ? `${head}\r\n` : `${head}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    return { text, complete: !headers.some((h) => /^(Content-Length|Transfer-Encoding):/.test(h)) };
  });

const HEAD_UNITS = [
  ...'\r\n :;,"%/\t\0',
  'HTTP/1.1',
  'Content-Length: ',
  'Transfer-Encoding: chunked',
  '\u00ff',
];

const input = fc.oneof(
  { weight: 6, arbitrary: request },
  {
    weight: 3,
    arbitrary: mutated(
      request.map(({ text }) => text),
      HEAD_UNITS,
    ).map((text) => ({ text, complete: false })),
  },
  {
    weight: 1,
    arbitrary: fc
      .oneof(
        fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1')),
        fc.uint8Array({ maxLength: 80 }).map((b) => PREFACE + Buffer.from(b).toString('latin1')),
        fc.string({ unit: fc.constantFrom(...HEAD_UNITS), maxLength: 80 }),
      )
      .map((text) => ({ text, complete: false })),
  },
);

describe('fuzz: request heads through the http server', () => {
  it('answers every head with a well-formed status, or closes, in time and without a 500', async () => {
    await fc.assert(
      fc.asyncProperty(input, async ({ text, complete }) => {
        checkAnswer(text, await exchange(Buffer.from(text, 'latin1'), complete));
      }),
      fuzzParameters(300),
    );
    const errors = logLines.filter((line) => line.level >= 50);
    assert.deepEqual(errors, [], 'error lines were logged');
    // Still serving.
    const answer = await exchange(Buffer.from('GET /items HTTP/1.1\r\nHost: x\r\n\r\n'), true);
    assert.match(answer.response, /^HTTP\/1\.1 200 /);
  });
});

/** Sends one HTTP/2 request; the status, or the code the stream was reset with. */
function h2Request(
  session: ClientHttp2Session,
  headers: Record<string, string>,
  body: string,
): Promise<{ status?: number; rstCode?: number; text: string }> {
  return new Promise((resolve) => {
    // Node ends a GET, HEAD or DELETE stream with its headers unless told otherwise; the body goes too.
    const stream = session.request(headers, { endStream: false });
    let status: number | undefined;
    let text = '';
    stream.on('response', (h) => {
      status = Number(h[':status']);
      // An event stream does not end by itself: its head is the answer.
      if (String(h['content-type']).startsWith('text/event-stream')) stream.close(http2.NGHTTP2_CANCEL);
    });
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => (text += chunk));
    stream.on('error', () => undefined);
    stream.on('close', () =>
      resolve({ ...(status === undefined ? {} : { status }), rstCode: stream.rstCode, text }),
    );
    stream.end(body);
  });
}

describe('found by fuzzing', () => {
  it('keeps an HTTP/2 session when a stream whose body outruns its content-length is answered 304 meanwhile', async () => {
    const session = http2Connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
    try {
      // Once the topic is attached, the 304 goes out and closes the stream (NO_ERROR) before
      // nghttp2's reset of it does.
      assert.equal((await h2Request(session, { ':method': 'GET', ':path': '/items' }, '')).status, 200);
      const answer = await h2Request(
        session,
        { ':method': 'GET', ':path': '/items', 'if-none-match': `"${itemsToken}"`, 'content-length': '1' },
        'longer',
      );
      assert.equal(answer.status, undefined);
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(session.destroyed, false);
      assert.equal((await h2Request(session, { ':method': 'GET', ':path': '/items' }, '')).status, 200);
    } finally {
      session.close();
    }
  });
});

describe('fuzz: HTTP/2 requests through the http server', () => {
  it('answers or resets each stream, never the session', async () => {
    // node ends a session after 1000 invalid frames (maxSessionInvalidFrames), a flood bound each
    // reset stream counts towards; runs take a fresh session well before that.
    const RUNS_PER_SESSION = 300;
    const open = (): ClientHttp2Session => {
      const opened = http2Connect(`http://127.0.0.1:${port}`);
      opened.on('error', () => undefined);
      return opened;
    };
    let session = open();
    let runs = 0;
    const h2Path = path.filter((p) => p.startsWith('/') && !/[\s]/.test(p));
    const value = fc.string({ unit: fc.constantFrom(...'"W/,* !=;[]:AZaz09-_'), maxLength: 40 });
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom('GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'OPTIONS'),
          h2Path,
          fc.record(
            {
              'if-none-match': fc.oneof(value, fc.constant(`"${itemsToken}"`)),
              prefer: fc.oneof(value, fc.constantFrom('wait=0', 'wait=1', 'respond-async')),
              'last-event-id': value,
              accept: fc.constantFrom('text/event-stream', '*/*', 'application/json'),
              origin: fc.constantFrom('https://app.example', 'null', 'http://evil.example'),
            },
            { requiredKeys: [] },
          ),
          fc.string({ maxLength: 12 }),
          fc.option(fc.integer({ min: 0, max: 16 })),
          async (m, p, headers, body, length) => {
            if (++runs % RUNS_PER_SESSION === 0) {
              session.close();
              session = open();
            }
            const sent: Record<string, string> = { ':method': m, ':path': p, ...headers };
            if (length !== null) sent['content-length'] = String(length);
            const answer = await h2Request(session, sent, body);
            // A session the server destroys is gone by the next turn.
            await new Promise((resolve) => setImmediate(resolve));
            assert.equal(session.destroyed, false, 'the session was destroyed');
            if (answer.status === undefined) {
              // A stream is reset only for a body that does not match its content-length.
              assert.equal(answer.rstCode, http2.NGHTTP2_PROTOCOL_ERROR);
              assert.notEqual(Number(sent['content-length'] ?? -1), Buffer.byteLength(body));
            } else {
              assert.notEqual(answer.status, 500);
              assert.doesNotMatch(answer.text, STACK_FRAME);
            }
          },
        ),
        fuzzParameters(200),
      );
      const last = await h2Request(session, { ':method': 'GET', ':path': '/items' }, '');
      assert.equal(last.status, 200);
    } finally {
      session.close();
    }
  });
});
