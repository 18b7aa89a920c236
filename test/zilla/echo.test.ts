import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect as tcpConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { createTestCa, issueCertificate } from '../../src/embedded/kafka/index.ts';
import { until } from '../support/until.ts';
import { startExample, type ZillaExample } from './support.ts';

// Zilla's tcp.echo, tls.echo, http.echo and tcp.reflect examples: no broker, each config started
// unchanged but for its port (and for tls.echo its key files), replaying the README's sessions.

let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kgate-zilla-echo-'));
});

after(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** What a line-oriented client (nc, openssl s_client) has received so far. */
function collect(socket: Socket): () => string {
  let text = '';
  socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  return () => text;
}

async function nc(port: number): Promise<{ socket: Socket; received: () => string }> {
  const socket = tcpConnect(port, '127.0.0.1');
  await once(socket, 'connect');
  return { socket, received: collect(socket) };
}

describe('tcp.echo', () => {
  let kgate: ZillaExample;

  before(async () => {
    kgate = await startExample('tcp.echo', {}, join(dir, 'tcp.echo'), 'tcp');
  });

  after(async () => kgate?.stop());

  it('echoes a line typed into nc', async () => {
    const { socket, received } = await nc(kgate.port);
    socket.write('Hello, world\n');
    await until('the echo', () => received() === 'Hello, world\n', 5_000);
    socket.end();
    await once(socket, 'close');
    assert.equal(received(), 'Hello, world\n');
  });
});

describe('tls.echo', () => {
  let kgate: ZillaExample;
  let ca: string;

  before(async () => {
    // The example's test CA, its localhost certificate and the client CA it trusts, made afresh.
    const keys = join(dir, 'tls');
    await mkdir(join(keys, 'client'), { recursive: true });
    const testCa = await createTestCa(keys, 'Test CA');
    const server = await issueCertificate(testCa, keys, 'localhost');
    const clientCa = await createTestCa(join(keys, 'client'), 'Test Client CA');
    ca = await readFile(testCa.certFile, 'utf8');
    kgate = await startExample(
      'tls.echo',
      { TLS_KEYS: server.keyStoreFile, TLS_TRUST: clientCa.certFile },
      join(dir, 'tls.echo'),
      'tcp',
    );
  });

  after(async () => kgate?.stop());

  async function sClient(alpn: string): Promise<TLSSocket> {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port: kgate.port,
      servername: 'localhost',
      ca,
      ALPNProtocols: [alpn],
    });
    await once(socket, 'secureConnect');
    return socket;
  }

  it('echoes a line over TLS with ALPN echo, the server verified against the test CA', async () => {
    const socket = await sClient('echo');
    assert.equal(socket.authorized, true);
    assert.equal(socket.alpnProtocol, 'echo');
    const received = collect(socket);
    socket.write('Hello, world\n');
    await until('the echo', () => received() === 'Hello, world\n', 5_000);
    socket.end();
    await once(socket, 'close');
  });

  it('closes secure-echo, whose guarded route is not in this config', async () => {
    const socket = await sClient('secure-echo');
    const received = collect(socket);
    socket.write('Hello, world\n');
    await once(socket, 'close');
    assert.equal(received(), '');
  });
});

describe('http.echo', () => {
  let kgate: ZillaExample;

  before(async () => {
    kgate = await startExample('http.echo', {}, join(dir, 'http.echo'), 'tcp');
  });

  after(async () => kgate?.stop());

  it('answers curl -d with the body it sent', async () => {
    // What curl -d sends: a form body.
    const res = await fetch(kgate.url('/'), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'Hello, world',
    });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'Hello, world');
    assert.equal(res.headers.get('content-type'), 'application/x-www-form-urlencoded');
    assert.equal(res.headers.get('content-length'), '12');
  });
});

describe('tcp.reflect', () => {
  let kgate: ZillaExample;

  before(async () => {
    kgate = await startExample('tcp.reflect', {}, join(dir, 'tcp.reflect'), 'tcp');
  });

  after(async () => kgate?.stop());

  it('sends each client the lines of both', async () => {
    const first = await nc(kgate.port);
    const second = await nc(kgate.port);
    // Connect each client first: a line from the second reaching the first says both are in.
    second.socket.write('ready\n');
    await until('both clients connected', () => first.received() === 'ready\n', 5_000);
    first.socket.write('Hello, one\n');
    await until(
      'Hello, one at both',
      () => first.received().endsWith('Hello, one\n') && second.received().endsWith('Hello, one\n'),
      5_000,
    );
    second.socket.write('Hello, two\n');
    const both = 'ready\nHello, one\nHello, two\n';
    await until('Hello, two at both', () => first.received() === both && second.received() === both, 5_000);
    first.socket.destroy();
    second.socket.destroy();
  });
});
