import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import {
  Agent,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { connect as http2Connect } from 'node:http2';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { HttpError, type HttpRouteMatch } from '../../src/bindings/north.ts';
import { until } from '../support/until.ts';
import { bindingConfig, handlerConfig, startChain, type Chain } from './north-harness.ts';

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  reused: boolean;
  localPort: number;
}

function send(
  port: number,
  options: {
    method?: string;
    path?: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
    agent?: Agent;
  },
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method: options.method ?? 'GET',
        path: options.path ?? '/',
        headers: options.headers ?? {},
        agent: options.agent ?? false,
      },
      (res) => {
        let body = '';
        const localPort = res.socket.localPort ?? 0;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            reused: req.reusedSocket,
            localPort,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

const items = {
  handleRequest(req: IncomingMessage, res: ServerResponse, match: HttpRouteMatch): void {
    res.setHeader('ETag', '"1"');
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ method: req.method, path: req.url, params: match.params }));
  },
};

const echo = {
  async handleRequest(_req: IncomingMessage, res: ServerResponse, match: HttpRouteMatch): Promise<void> {
    const body = await match.readBody();
    res.end(body);
  },
};

/** Holds each response until the test releases it, and counts how many it held at once. */
const held = {
  calls: [] as string[],
  active: 0,
  maxActive: 0,
  waiting: [] as (() => void)[],
  handleRequest(req: IncomingMessage, res: ServerResponse): void {
    this.calls.push(req.url ?? '');
    this.maxActive = Math.max(this.maxActive, ++this.active);
    this.waiting.push(() => {
      this.active--;
      res.end(`answer to ${req.url ?? ''}`);
    });
  },
  releaseNext(): void {
    this.waiting.shift()?.();
  },
};

const failing = {
  handleRequest(req: IncomingMessage, res: ServerResponse): void {
    if (req.url === '/fail/upstream') throw new HttpError('KGATE_KAFKA_FAILED', 'kafka is unavailable');
    if (req.url === '/fail/unreachable')
      throw new HttpError(
        'KGATE_KAFKA_UNAVAILABLE',
        'no metadata for items within 30 s: Kafka not reachable',
      );
    // node:http sets the status and its reason phrase before it checks the headers, then throws.
    if (req.url === '/fail/header') res.writeHead(200, { 'Content-Type': 'text/plain\r\nX-Injected: yes' });
    throw new Error('boom');
  },
};

describe('http server', () => {
  let chain: Chain;
  let port: number;
  before(async () => {
    chain = await startChain(
      [
        handlerConfig('items'),
        handlerConfig('echo'),
        handlerConfig('failing'),
        handlerConfig('held'),
        bindingConfig(
          'http',
          'http',
          'server',
          {
            limits: { 'pipelined-requests': 4 },
            'access-control': {
              policy: 'cross-origin',
              allow: { origins: ['https://app.example', 'http://localhost:8000'], credentials: true },
              'max-age': 600,
            },
          },
          undefined,
          [
            { when: [{ headers: { ':method': 'GET', ':path': '/items/*' } }], exit: 'items' },
            { when: [{ headers: { ':path': '/echo', ':scheme': 'http' } }], exit: 'echo' },
            { when: [{ headers: { ':path': '/fail/*' } }], exit: 'failing' },
            { when: [{ headers: { ':path': '/held/*' } }], exit: 'held' },
          ],
        ),
        bindingConfig('tcp', 'tcp', 'server', { host: '127.0.0.1', port: 0 }, 'http'),
      ],
      { handlers: { items, echo, failing, held }, http: { maxBodyBytes: 1024, maxHeaderBytes: 4096 } },
    );
    port = chain.port();
  });
  after(() => chain.stop());

  it('routes by method and path with wildcards', async () => {
    const reply = await send(port, { path: '/items/a?x=1' });
    assert.equal(reply.status, 200);
    assert.deepEqual(JSON.parse(reply.body), { method: 'GET', path: '/items/a?x=1', params: {} });
    assert.equal((await send(port, { method: 'DELETE', path: '/items/a' })).status, 404);
  });

  it('answers an unrouted request with 404 and a JSON body', async () => {
    const reply = await send(port, { path: '/nowhere' });
    assert.equal(reply.status, 404);
    assert.equal(reply.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(reply.body), {
      status: 404,
      error: 'Not Found',
      message: 'no route for GET /nowhere',
    });
  });

  it('keeps connections alive between requests', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await send(port, { path: '/items/1', agent });
      const second = await send(port, { path: '/nowhere', agent });
      const third = await send(port, { path: '/items/3', agent });
      assert.equal(first.reused, false);
      assert.equal(second.reused, true);
      assert.equal(third.reused, true);
      assert.equal(third.localPort, first.localPort);
    } finally {
      agent.destroy();
    }
  });

  it('reads bodies up to the limit', async () => {
    const reply = await send(port, { method: 'POST', path: '/echo', body: 'x'.repeat(1024) });
    assert.equal(reply.status, 200);
    assert.equal(reply.body.length, 1024);
  });

  it('answers 413 to a body announced larger than the limit, without calling the handler', async () => {
    const reply = await send(port, { method: 'POST', path: '/echo', body: 'x'.repeat(1025) });
    assert.equal(reply.status, 413);
    assert.deepEqual(JSON.parse(reply.body), {
      status: 413,
      error: 'Payload Too Large',
      message: 'request body is larger than 1024 bytes',
    });
  });

  it('answers 413 to a chunked body that grows past the limit', async () => {
    const reply = await new Promise<Reply>((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port, method: 'POST', path: '/echo', agent: false },
        (res) => {
          let body = '';
          res.on('data', (chunk: Buffer) => (body += chunk.toString()));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body, reused: false, localPort: 0 }),
          );
        },
      );
      req.on('error', reject);
      req.write('y'.repeat(800));
      setTimeout(() => req.end('y'.repeat(800)), 20);
    });
    assert.equal(reply.status, 413);
    assert.equal(reply.headers.connection, 'close');
    assert.match(reply.body, /request body is larger than 1024 bytes/);
  });

  it('answers 431 to oversized headers and stays up', async () => {
    const reply = await send(port, { path: '/items/1', headers: { 'x-big': 'z'.repeat(8000) } });
    assert.equal(reply.status, 431);
    assert.match(JSON.parse(reply.body).message as string, /headers are larger than 4096 bytes/);
    assert.equal((await send(port, { path: '/items/1' })).status, 200);
  });

  it('answers 400 to garbage and stays up', async () => {
    const socket = connect(port, '127.0.0.1');
    socket.end('NOT HTTP AT ALL\r\n\r\n');
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
    await once(socket, 'close');
    assert.match(text, /^HTTP\/1\.1 400 Bad Request/);
    assert.equal((await send(port, { path: '/items/1' })).status, 200);
  });

  /** Sends `head` on a connection of its own and reads until the server closes it. */
  async function raw(head: string): Promise<string> {
    const socket = connect(port, '127.0.0.1');
    socket.write(head);
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    await once(socket, 'close');
    return text;
  }

  it('refuses a request line without an HTTP version, or with HTTP/2.0, and closes the connection', async () => {
    const none = await raw('GET /items/1\r\n\r\n');
    assert.match(none, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.match(none, /\r\nConnection: close\r\n/i);
    assert.match(none, /names no HTTP version/);
    const two = await raw('GET /items/1 HTTP/2.0\r\nHost: x\r\n\r\n');
    assert.match(two, /^HTTP\/1\.1 505 HTTP Version Not Supported\r\n/);
    assert.match(two, /\r\nConnection: close\r\n/i);
    // HTTP/1.0 is still served.
    assert.match(await raw('GET /items/1 HTTP/1.0\r\n\r\n'), /^HTTP\/1\.1 200 OK\r\n/);
  });

  it('answers 400 to a path with an invalid percent-escape, which would alias another spelling', async () => {
    for (const path of [
      '/items/%zz',
      '/items/%',
      '/items/a%2',
      '/items/%C0%AF',
      '/items/%ED%A0%80',
      '/items/%FF',
    ]) {
      const reply = await send(port, { path });
      assert.equal(reply.status, 400, path);
      assert.match(JSON.parse(reply.body).message as string, /invalid percent-escape/);
    }
    const fine = await send(port, { path: '/items/%25zz?q=%zz' });
    assert.equal(fine.status, 200);
    assert.deepEqual(JSON.parse(fine.body).path, '/items/%25zz?q=%zz');
  });

  it('answers a handler error with 500 and a JSON body, logs it, and keeps the connection', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const failed = await send(port, { path: '/fail/now', agent });
      assert.equal(failed.status, 500);
      assert.deepEqual(JSON.parse(failed.body), {
        status: 500,
        error: 'Internal Server Error',
        message: 'request failed: boom',
      });
      const line = chain.logs.find((l) => l.msg === 'request handler failed');
      assert.ok(line, 'error logged');
      assert.equal(line['exit'], 'failing');
      const next = await send(port, { path: '/items/1', agent });
      assert.equal(next.status, 200);
      assert.equal(next.reused, true);
    } finally {
      agent.destroy();
    }
  });

  it('answers an HttpError with its status', async () => {
    const reply = await send(port, { path: '/fail/upstream' });
    assert.equal(reply.status, 502);
    assert.equal(JSON.parse(reply.body).message, 'kafka is unavailable');
  });

  it('tells when to try again after a 503 that passes by itself, and only then', async () => {
    const unreachable = await send(port, { path: '/fail/unreachable' });
    assert.equal(unreachable.status, 503);
    assert.equal(unreachable.headers['retry-after'], '2');
    assert.match(JSON.parse(unreachable.body).message, /Kafka not reachable/);
    assert.equal((await send(port, { path: '/fail/upstream' })).headers['retry-after'], undefined);
  });

  it('answers CORS preflight requests itself', async () => {
    const reply = await send(port, {
      method: 'OPTIONS',
      path: '/echo',
      headers: {
        origin: 'https://app.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type, idempotency-key',
      },
    });
    assert.equal(reply.status, 204);
    assert.equal(reply.headers['access-control-allow-origin'], 'https://app.example');
    assert.equal(reply.headers['access-control-allow-methods'], 'POST');
    assert.equal(reply.headers['access-control-allow-headers'], 'content-type, idempotency-key');
    assert.equal(reply.headers['access-control-allow-credentials'], 'true');
    assert.equal(reply.headers['access-control-max-age'], '600');
    assert.match(String(reply.headers['vary']), /Origin/);
  });

  it('adds CORS headers to cross-origin requests, exposing ETag and Location', async () => {
    const reply = await send(port, { path: '/items/1', headers: { origin: 'http://localhost:8000' } });
    assert.equal(reply.status, 200);
    assert.equal(reply.headers['access-control-allow-origin'], 'http://localhost:8000');
    const exposed = String(reply.headers['access-control-expose-headers']).split(', ');
    assert.ok(exposed.includes('ETag') && exposed.includes('Location'), exposed.join());
  });

  it('refuses origins it does not allow', async () => {
    const reply = await send(port, { path: '/items/1', headers: { origin: 'https://evil.example' } });
    assert.equal(reply.status, 403);
    assert.equal(reply.headers['access-control-allow-origin'], undefined);
    assert.equal(JSON.parse(reply.body).message, 'origin https://evil.example is not allowed');
  });

  it("sends X-Content-Type-Options: nosniff with every answer, its own and its handlers'", async () => {
    const answers = [
      await send(port, { path: '/items/1' }),
      await send(port, { path: '/nowhere' }),
      await send(port, { path: '/fail/now' }),
      await send(port, { path: '/fail/upstream' }),
      await send(port, { method: 'POST', path: '/echo', body: 'x'.repeat(1025) }),
      await send(port, { path: '/items/1', headers: { 'x-big': 'z'.repeat(8000) } }),
      await send(port, { path: '/items/1', headers: { origin: 'https://evil.example' } }),
      await send(port, {
        method: 'OPTIONS',
        path: '/echo',
        headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
      }),
    ];
    for (const answer of answers)
      assert.equal(answer.headers['x-content-type-options'], 'nosniff', `${answer.status} ${answer.body}`);
    const socket = connect(port, '127.0.0.1');
    socket.end('NOT HTTP AT ALL\r\n\r\n');
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
    await once(socket, 'close');
    assert.match(text, /^HTTP\/1\.1 400 Bad Request\r\n(.+\r\n)*X-Content-Type-Options: nosniff\r\n/);
  });

  it('answers a handler whose response head was refused with 500 and its own reason phrase', async () => {
    const socket = connect(port, '127.0.0.1');
    socket.end('GET /fail/header HTTP/1.1\r\nHost: kgate\r\nConnection: close\r\n\r\n');
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
    await once(socket, 'close');
    assert.match(text, /^HTTP\/1\.1 500 Internal Server Error\r\n/);
    assert.doesNotMatch(text, /X-Injected/i);
  });

  it('builds pipelined answers one at a time, in order, and past limits.pipelined-requests answers 503 and closes', async () => {
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (text += chunk));
    const closed = once(socket, 'close');
    socket.write(Array.from({ length: 7 }, (_, i) => `GET /held/${i} HTTP/1.1\r\nHost: t\r\n\r\n`).join(''));
    for (let i = 0; i < 4; i++) {
      // The next request reaches its handler only once the answer before it is out.
      await until(`request ${i} handed to its handler`, () => held.calls.length === i + 1);
      assert.equal(held.active, 1);
      held.releaseNext();
    }
    await closed;
    assert.deepEqual(
      [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]),
      ['200', '200', '200', '200', '503'],
    );
    assert.deepEqual(held.calls, ['/held/0', '/held/1', '/held/2', '/held/3']);
    assert.equal(held.maxActive, 1);
    const refusal = text.slice(text.lastIndexOf('HTTP/1.1 503'));
    assert.match(refusal, /^Retry-After: 1\r$/m);
    assert.match(refusal, /^Connection: close\r$/m);
    assert.match(refusal, /more than 4 requests in flight on one connection \(limits\.pipelined-requests\)/);
    const rejected = (
      await chain.engine.metrics.getSingleMetricAsString('kgate_http_server_requests_rejected_total')
    )
      .split('\n')
      .find((line) => line.includes('reason="pipelined_requests"'));
    assert.match(rejected ?? '', / [1-9]\d*$/);
  });
});

describe('http server timeouts: clients that take too long', () => {
  let chain: Chain;
  let port: number;
  before(async () => {
    chain = await startChain(
      [
        handlerConfig('echo'),
        bindingConfig(
          'http',
          'http',
          'server',
          {
            timeouts: { headers: 0.5, 'keep-alive': 0.5, 'body-idle': 0.5 },
          },
          'echo',
        ),
        bindingConfig('tcp', 'tcp', 'server', { host: '127.0.0.1', port: 0 }, 'http'),
      ],
      { handlers: { echo } },
    );
    port = chain.port();
  });
  after(() => chain.stop());

  /** A raw connection: what it was sent back, and after how long it was closed. */
  function raw(): { socket: Socket; closed: Promise<{ text: string; ms: number }> } {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    const began = performance.now();
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    const closed = once(socket, 'close').then(() => ({ text, ms: performance.now() - began }));
    return { socket, closed };
  }

  it('answers 408 to headers trickled past the headers timeout, and closes (slowloris)', async () => {
    const { socket, closed } = raw();
    socket.write('GET /echo HTTP/1.1\r\nHost: kgate\r\n');
    const trickle = setInterval(() => socket.write('X-Slow: 1\r\n'), 100);
    try {
      const { text, ms } = await closed;
      assert.match(text, /^HTTP\/1\.1 408 Request Timeout\r\n/);
      assert.ok(ms < 3_000, `closed after ${ms} ms`);
    } finally {
      clearInterval(trickle);
    }
  });

  it('closes a connection that sends nothing, and an idle one after the keep-alive timeout', async () => {
    const silent = raw();
    assert.ok((await silent.closed).ms < 3_000);
    const idle = raw();
    idle.socket.write('POST /echo HTTP/1.1\r\nHost: kgate\r\nContent-Length: 2\r\n\r\nhi');
    const { text, ms } = await idle.closed;
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nhi$/);
    assert.ok(ms < 3_000, `closed after ${ms} ms`);
  });

  it('answers 408 to a body that stalls, over HTTP/1.1 and HTTP/2, and HTTP/2 serves the next stream', async () => {
    const { socket, closed } = raw();
    socket.write('POST /echo HTTP/1.1\r\nHost: kgate\r\nContent-Length: 10\r\n\r\nabc');
    const { text } = await closed;
    assert.match(text, /^HTTP\/1\.1 408 Request Timeout\r\n/);
    assert.match(text, /request body: nothing arrived for 0\.5 s \(after 3 bytes\)/);

    const session = http2Connect(`http://127.0.0.1:${port}`);
    try {
      const stalled = session.request({ ':method': 'POST', ':path': '/echo', 'content-length': '10' });
      stalled.write('abc');
      const [headers] = (await once(stalled, 'response')) as [Record<string, unknown>];
      assert.equal(headers[':status'], 408);
      stalled.resume();
      const next = session.request({ ':method': 'POST', ':path': '/echo' });
      next.end('again');
      let body = '';
      next.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      await once(next, 'end');
      assert.equal(body, 'again');
    } finally {
      session.close();
    }
  });

  it('closes an HTTP/2 connection whose header block never ends, and one that opens no stream', async () => {
    const { socket, closed } = raw();
    // The connection preface and an empty SETTINGS frame, then a HEADERS frame for stream 1
    // without END_HEADERS (:method GET, indexed) and no CONTINUATION ever.
    socket.write(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'));
    socket.write(Buffer.from([0, 0, 0, 0x4, 0, 0, 0, 0, 0]));
    socket.write(Buffer.from([0, 0, 1, 0x1, 0, 0, 0, 0, 1, 0x82]));
    assert.ok((await closed).ms < 3_000);
    const session = http2Connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
    const began = performance.now();
    await once(session, 'close');
    assert.ok(performance.now() - began < 3_000);
  });
});
