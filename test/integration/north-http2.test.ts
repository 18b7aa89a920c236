// HTTP/2 on the http server binding: prior knowledge on plain connections, ALPN behind tls, and
// the same routing, limits and error bodies as HTTP/1.1.
import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import {
  connect as http2Connect,
  constants as http2,
  type ClientHttp2Session,
  type OutgoingHttpHeaders,
} from 'node:http2';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { createTestCa, issueCertificate } from '../../src/embedded/kafka/index.ts';
import type { HttpRouteMatch } from '../../src/bindings/north.ts';
import { BODY_SLICE_BYTES, writeBody } from '../../src/bindings/response-body.ts';
import { until } from '../support/until.ts';
import { bindingConfig, handlerConfig, startChain, type Chain } from './north-harness.ts';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: string;
}

function request(session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers);
    let answer: Omit<Answer, 'body'> | undefined;
    let text = '';
    stream.on('response', (h) => {
      answer = { status: Number(h[':status']), headers: h };
    });
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => (text += chunk));
    stream.on('end', () =>
      answer === undefined ? reject(new Error('no response')) : resolve({ ...answer, body: text }),
    );
    stream.on('error', reject);
    stream.end(body);
  });
}

const items = {
  handleRequest(req: IncomingMessage, res: ServerResponse, match: HttpRouteMatch): void {
    const socket = req.socket as TLSSocket & { encrypted?: boolean };
    res.setHeader('Content-Type', 'application/json');
    res.end(
      JSON.stringify({
        method: req.method,
        path: req.url,
        version: req.httpVersion,
        secure: socket.encrypted === true,
        params: match.params,
      }),
    );
  },
};

const echo = {
  async handleRequest(_req: IncomingMessage, res: ServerResponse, match: HttpRouteMatch): Promise<void> {
    res.end(await match.readBody());
  },
};

/** Counts the streams it serves at once; /held answers after a moment, /big writes a shared 4 MiB body. */
const BIG = Buffer.alloc(4 * 1024 * 1024, 'b');
const streams = {
  active: 0,
  maxActive: 0,
  big: [] as { res: ServerResponse; written: Promise<void> }[],
  async handleRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.url === '/big') {
      const gone = new AbortController();
      res.once('close', () => gone.abort());
      const written = writeBody(res, BIG, gone.signal);
      this.big.push({ res, written });
      await written;
      return;
    }
    this.maxActive = Math.max(this.maxActive, ++this.active);
    await new Promise((resolve) => setTimeout(resolve, 20));
    this.active--;
    res.end('held');
  },
};

describe('http server over HTTP/2', () => {
  let dir: string;
  let caPem: string;
  let chain: Chain;
  let plain: number;
  let secure: number;
  let only11: number;
  let limited: number;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kgate-http2-'));
    const ca = await createTestCa(dir);
    caPem = await readFile(ca.certFile, 'utf8');
    const cert = await issueCertificate(ca, dir, 'server');
    const routes = [
      { when: [{ headers: { ':method': 'GET', ':path': '/items/*' } }], exit: 'items' },
      { when: [{ headers: { ':path': '/echo' } }], exit: 'echo' },
    ];
    chain = await startChain(
      [
        handlerConfig('items'),
        handlerConfig('echo'),
        bindingConfig('http', 'http', 'server', {}, undefined, routes),
        bindingConfig('http11', 'http', 'server', { versions: ['http/1.1'] }, undefined, routes),
        bindingConfig('http_limited', 'http', 'server', { limits: { 'concurrent-streams': 4 } }, 'streams'),
        handlerConfig('streams'),
        bindingConfig('tcp_limited', 'tcp', 'server', { host: '127.0.0.1', port: 0 }, 'http_limited'),
        bindingConfig(
          'tls',
          'tls',
          'server',
          { key: cert.keyFile, cert: cert.certFile, alpn: ['h2', 'http/1.1'] },
          'http',
        ),
        bindingConfig('tcp', 'tcp', 'server', { host: '127.0.0.1', port: 0 }, 'http'),
        bindingConfig('tcps', 'tcp', 'server', { host: '127.0.0.1', port: 0 }, 'tls'),
        bindingConfig('tcp11', 'tcp', 'server', { host: '127.0.0.1', port: 0 }, 'http11'),
      ],
      { handlers: { items, echo, streams }, http: { maxBodyBytes: 1024, maxHeaderBytes: 4096 } },
    );
    limited = chain.port('tcp_limited');
    plain = chain.port('tcp');
    secure = chain.port('tcps');
    only11 = chain.port('tcp11');
  });

  after(async () => {
    await chain.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves HTTP/2 with prior knowledge on a plain connection, many streams on one session', async () => {
    const session = http2Connect(`http://127.0.0.1:${plain}`);
    try {
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) => request(session, { ':method': 'GET', ':path': `/items/${i}` })),
      );
      answers.forEach((answer, i) => {
        assert.equal(answer.status, 200);
        assert.equal(answer.headers['content-type'], 'application/json');
        assert.deepEqual(JSON.parse(answer.body), {
          method: 'GET',
          path: `/items/${i}`,
          version: '2.0',
          secure: false,
          params: {},
        });
      });
    } finally {
      session.close();
    }
  });

  it('keeps HTTP/1.1 working on the same listener', async () => {
    const answer = await new Promise<Answer>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: plain, path: '/items/x', agent: false }, (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(answer.status, 200);
    assert.equal((JSON.parse(answer.body) as { version: string }).version, '1.1');
  });

  it('applies the same routes, body limit and header limit as HTTP/1.1', async () => {
    const session = http2Connect(`http://127.0.0.1:${plain}`);
    try {
      const missing = await request(session, { ':method': 'DELETE', ':path': '/items/a' });
      assert.equal(missing.status, 404);
      assert.deepEqual(JSON.parse(missing.body), {
        status: 404,
        error: 'Not Found',
        message: 'no route for DELETE /items/a',
      });
      const echoed = await request(session, { ':method': 'POST', ':path': '/echo' }, 'x'.repeat(1024));
      assert.equal(echoed.status, 200);
      assert.equal(echoed.body.length, 1024);
      const big = await request(session, { ':method': 'POST', ':path': '/echo' }, 'x'.repeat(1025));
      assert.equal(big.status, 413);
      assert.match(big.body, /request body is larger than 1024 bytes/);
      const headers = await request(session, {
        ':method': 'GET',
        ':path': '/items/1',
        'x-big': 'z'.repeat(5000),
      });
      assert.equal(headers.status, 431);
      assert.match(headers.body, /headers are larger than 4096 bytes/);
      // The session survived every refusal.
      assert.equal((await request(session, { ':method': 'GET', ':path': '/items/2' })).status, 200);
    } finally {
      session.close();
    }
  });

  it('resets only the stream whose body outruns its content-length; the session goes on', async () => {
    const session = http2Connect(`http://127.0.0.1:${plain}`);
    session.on('error', () => undefined);
    try {
      const open = request(session, { ':method': 'POST', ':path': '/echo' });
      const stream = session.request({ ':method': 'POST', ':path': '/echo', 'content-length': '5' });
      stream.on('error', () => undefined);
      stream.end('0123456789');
      await new Promise((resolve) => stream.once('close', resolve));
      assert.equal(stream.rstCode, http2.NGHTTP2_PROTOCOL_ERROR);
      assert.equal(session.destroyed, false);
      // Streams opened before and after it are answered on the same session.
      assert.equal((await open).status, 200);
      assert.equal((await request(session, { ':method': 'GET', ':path': '/items/after' })).status, 200);
      const echoed = await request(
        session,
        { ':method': 'POST', ':path': '/echo', 'content-length': '3' },
        'abc',
      );
      assert.equal(echoed.body, 'abc');
    } finally {
      session.close();
    }
  });

  it('still ends a session on a connection error', async () => {
    const socket = tcpConnect(plain, '127.0.0.1');
    socket.on('error', () => undefined);
    const settings = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
    const ack = Buffer.from([0, 0, 0, 4, 1, 0, 0, 0, 0]);
    // A SETTINGS acknowledgement nobody asked for is a connection error (RFC 9113 6.5).
    socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), settings, ack, ack, ack]));
    socket.resume();
    await once(socket, 'close');
  });

  it('negotiates h2 by ALPN behind a tls server and reports the https scheme', async () => {
    const session = http2Connect(`https://localhost:${secure}`, { ca: caPem });
    try {
      const answer = await request(session, { ':method': 'GET', ':path': '/items/tls' });
      assert.equal(answer.status, 200);
      const seen = JSON.parse(answer.body) as { version: string; secure: boolean };
      assert.equal(seen.version, '2.0');
      assert.equal(seen.secure, true);
    } finally {
      session.close();
    }
  });

  it('closes an HTTP/2 connection where versions allow http/1.1 only, and still serves HTTP/1.1', async () => {
    const socket = tcpConnect(only11, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
    await once(socket, 'close');
    assert.doesNotMatch(text, /HTTP\/2/);
    const answer = await new Promise<number>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: only11, path: '/items/y', agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(answer, 200);
  });

  it('announces limits.concurrent-streams and serves no more streams of a session at once', async () => {
    const session = http2Connect(`http://127.0.0.1:${limited}`);
    try {
      const [settings] = (await once(session, 'remoteSettings')) as [{ maxConcurrentStreams?: number }];
      assert.equal(settings.maxConcurrentStreams, 4);
      const answers = await Promise.all(
        Array.from({ length: 12 }, () => request(session, { ':method': 'GET', ':path': '/held' })),
      );
      assert.deepEqual(new Set(answers.map((a) => a.status)), new Set([200]));
      assert.ok(streams.maxActive <= 4, `${streams.maxActive} streams served at once`);
    } finally {
      session.close();
    }
  });

  it('writes a body as flow control lets it, holding little for a client that reads nothing', async () => {
    const session = http2Connect(`http://127.0.0.1:${limited}`, { settings: { initialWindowSize: 1024 } });
    try {
      const stream = session.request({ ':method': 'GET', ':path': '/big' });
      stream.pause();
      await until('the body is being written', () => streams.big.length === 1);
      const big = streams.big[0];
      assert.ok(big !== undefined);
      // Writing waits on the stream: what is queued stays near one slice, not the 4 MiB body.
      await until('the writer waits for the stream', () => big.res.writableLength > 0);
      await new Promise((resolve) => setImmediate(resolve));
      assert.ok(
        big.res.writableLength <= 2 * BODY_SLICE_BYTES,
        `${big.res.writableLength} bytes queued on the stream`,
      );
      stream.resume();
      let received = 0;
      stream.on('data', (chunk: Buffer) => (received += chunk.length));
      await once(stream, 'end');
      await big.written;
      assert.equal(received, BIG.length);
    } finally {
      session.close();
    }
  });
});
