import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect as tcpConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import {
  createTestCa,
  issueCertificate,
  type IssuedCertificate,
  type TestCa,
} from '../../src/embedded/kafka/index.ts';
import type { ConnectionInfo } from '../../src/bindings/north.ts';
import { bindingConfig, handlerConfig, startChain, type Chain } from './north-harness.ts';

function get(port: number, ca: string | undefined): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        path: '/hello',
        servername: 'localhost',
        headers: { host: `localhost:${port}` },
        agent: false,
        ...(ca ? { ca } : {}),
      },
      (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function tls(port: number, options: ConnectionOptions): Promise<TLSSocket> {
  const socket = tlsConnect({ host: '127.0.0.1', port, ...options });
  await once(socket, 'secureConnect');
  return socket;
}

describe('tls server', () => {
  let dir: string;
  let ca: TestCa;
  let caPem: string;
  let server: IssuedCertificate;
  let chain: Chain;
  let port: number;
  const raw: ConnectionInfo[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kgate-tls-'));
    ca = await createTestCa(dir);
    caPem = await readFile(ca.certFile, 'utf8');
    server = await issueCertificate(ca, dir, 'server');
    const page = {
      handleRequest(req: IncomingMessage, res: ServerResponse): void {
        res.end(`hello over ${(req.socket as TLSSocket).getProtocol() ?? 'nothing'}`);
      },
    };
    const greeter = {
      acceptConnection(socket: Socket, info: ConnectionInfo): void {
        raw.push(info);
        socket.end('raw');
      },
    };
    chain = await startChain(
      [
        handlerConfig('page'),
        handlerConfig('raw'),
        bindingConfig('http', 'http', 'server', {}, undefined, [
          { when: [{ headers: { ':scheme': 'https', ':authority': 'localhost:*' } }], exit: 'page' },
        ]),
        bindingConfig(
          'tls',
          'tls',
          'server',
          { key: server.keyFile, cert: server.certFile, alpn: ['http/1.1', 'raw'] },
          'http',
          [{ when: [{ alpn: 'raw' }], exit: 'raw' }],
        ),
        bindingConfig('tcp', 'tcp', 'server', { host: '127.0.0.1', port: 0 }, 'tls'),
      ],
      { handlers: { page, raw: greeter } },
    );
    port = chain.port();
  });

  after(async () => {
    await chain.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('terminates TLS for a client that trusts the CA and serves HTTPS behind it', async () => {
    const reply = await get(port, caPem);
    assert.equal(reply.status, 200);
    assert.match(reply.body, /^hello over TLSv1\.[23]$/);
  });

  it('fails the handshake of a client that does not trust the certificate, and only that one', async () => {
    await assert.rejects(get(port, undefined), (error: NodeJS.ErrnoException) => {
      assert.match(String(error.code), /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|UNABLE_TO_GET_ISSUER/);
      return true;
    });
    assert.equal((await get(port, caPem)).status, 200);
  });

  it('closes a connection that does not speak TLS, and stays up', async () => {
    const socket = tcpConnect(port, '127.0.0.1');
    socket.on('error', () => {});
    socket.end('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    socket.resume();
    await once(socket, 'close');
    assert.equal((await get(port, caPem)).status, 200);
    assert.ok(chain.logs.some((l) => l.msg === 'TLS handshake failed'));
  });

  it('routes by negotiated protocol and passes server name and ALPN on', async () => {
    const socket = await tls(port, { ca: caPem, servername: 'localhost', ALPNProtocols: ['raw'] });
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
    await once(socket, 'end');
    socket.destroy();
    assert.equal(text, 'raw');
    assert.equal(raw[0]?.secure, true);
    assert.equal(raw[0]?.alpn, 'raw');
    assert.equal(raw[0]?.authority, 'localhost');
    assert.equal(raw[0]?.remoteAddress, '127.0.0.1');
  });

  it('takes a `keys` entry as one PEM file with key and certificate', async () => {
    const other = await startChain(
      [
        handlerConfig('raw'),
        bindingConfig('tls', 'tls', 'server', { keys: [server.keyStoreFile] }, 'raw'),
        bindingConfig('tcp', 'tcp', 'server', { host: '127.0.0.1', port: 0 }, 'tls'),
      ],
      { handlers: { raw: { acceptConnection: (socket: Socket) => socket.end('ok') } } },
    );
    try {
      const socket = await tls(other.port(), { ca: caPem, servername: 'localhost' });
      socket.resume();
      await once(socket, 'end');
      socket.destroy();
    } finally {
      await other.stop();
    }
  });

  it('fails to start without a key, or with an unreadable one, saying so', async () => {
    const start = (options: Record<string, unknown>): Promise<Chain> =>
      startChain([handlerConfig('raw'), bindingConfig('tls', 'tls', 'server', options, 'raw')], {
        handlers: { raw: { acceptConnection: () => {} } },
      });
    await assert.rejects(start({ cert: server.certFile }), {
      message:
        'binding tls failed to start: a tls server needs options.key and options.cert (PEM file paths)',
    });
    await assert.rejects(
      start({ key: join(dir, 'missing.key'), cert: server.certFile }),
      /cannot read TLS key file .*missing\.key/,
    );
  });
});
