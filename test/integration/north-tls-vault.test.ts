import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  connect as tlsConnect,
  createServer as createTlsServer,
  type ConnectionOptions,
  type PeerCertificate,
} from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { tlsConnectionOptions } from '../../src/bindings/kafka/client/config.ts';
import { tlsOptions } from '../../src/bindings/tls/options.ts';
import { parseConfig, type BindingConfig } from '../../src/config/index.ts';
import { createTestCa } from '../../src/embedded/kafka/index.ts';
import { makeTestStores, type TestStores } from '../support/stores.ts';
import { bindingConfig, handlerConfig, startChain, type Chain } from './north-harness.ts';

const yaml = (...lines: string[]): string => lines.join('\n') + '\n';

/** The tls server of a config in Zilla's shape, parsed and checked as `kgate start` would. */
function tlsServer(stores: TestStores, storeType: 'pkcs12' | 'pem', tls: string[]): BindingConfig {
  const keys = storeType === 'pem' ? 'keys.pem' : 'keys.p12';
  const config = parseConfig(
    yaml(
      'vaults:',
      '  server:',
      '    type: filesystem',
      '    options:',
      '      keys:',
      `        store: ${keys}`,
      `        type: ${storeType}`,
      '        password: ${{env.KEYSTORE_PASSWORD}}',
      '      trust:',
      '        store: trust.p12',
      '        password: ${{env.KEYSTORE_PASSWORD}}',
      'bindings:',
      '  tcp: { type: tcp, kind: server, options: { host: 127.0.0.1, port: 0 }, exit: tls }',
      '  tls:',
      '    type: tls',
      '    kind: server',
      '    vault: server',
      '    options:',
      ...tls.map((line) => `      ${line}`),
      '    exit: tcp_out',
      '  tcp_out: { type: tcp, kind: client, options: { host: localhost, port: 1 } }',
    ),
    join(stores.dir, 'kgate.yaml'),
    { KEYSTORE_PASSWORD: stores.password },
  );
  const server = config.bindings.get('tls');
  assert.ok(server?.vault !== undefined);
  return { ...server, exit: 'raw' };
}

async function start(binding: BindingConfig): Promise<Chain> {
  return startChain(
    [
      handlerConfig('raw'),
      binding,
      bindingConfig('tcp', 'tcp', 'server', { host: '127.0.0.1', port: 0 }, 'tls'),
    ],
    { handlers: { raw: { acceptConnection: (socket: Socket) => socket.end('ok') } } },
  );
}

/** Completes a handshake and returns the certificate the server presented. */
async function presented(port: number, options: ConnectionOptions): Promise<PeerCertificate> {
  const socket = tlsConnect({ host: '127.0.0.1', port, ...options });
  try {
    await once(socket, 'secureConnect');
    const certificate = socket.getPeerCertificate();
    socket.resume();
    await once(socket, 'end');
    return certificate;
  } finally {
    socket.destroy();
  }
}

describe('tls server with keys and trust by vault alias', () => {
  let stores: TestStores;
  const chains: Chain[] = [];

  before(async () => {
    stores = await makeTestStores(await mkdtemp(join(tmpdir(), 'kgate-tls-vault-')));
  });

  after(async () => {
    for (const chain of chains) await chain.stop();
    await rm(stores.dir, { recursive: true, force: true });
  });

  it('presents the key of the alias for the server name asked for, the first one otherwise', async () => {
    const chain = await start(tlsServer(stores, 'pkcs12', ['keys: [ localhost, other ]']));
    chains.push(chain);
    const port = chain.port();
    const localhost = await presented(port, { ca: stores.caPem, servername: 'localhost' });
    assert.equal(localhost.subject.CN, 'localhost');
    const other = await presented(port, { ca: stores.caPem, servername: 'other.test' });
    assert.equal(other.subject.CN, 'other');
    // The chain from the store reaches the CA the client trusts, which verified it.
    assert.equal(localhost.issuer.CN, 'kgate test CA');
    const unnamed = await presented(port, {
      ca: stores.caPem,
      servername: 'unknown.test',
      checkServerIdentity: () => undefined,
    });
    assert.equal(unnamed.subject.CN, 'localhost');
  });

  it('reads the key of a PEM store named by its friendlyName line', async () => {
    const chain = await start(tlsServer(stores, 'pem', ['keys: [ localhost ]']));
    chains.push(chain);
    const certificate = await presented(chain.port(), { ca: stores.caPem, servername: 'localhost' });
    assert.equal(certificate.subject.CN, 'localhost');
    assert.equal(certificate.raw.toString('base64'), pemBody(stores.leaves.localhost));
  });

  it('asks clients for certificates issued by the trusted alias, and refuses those without one', async () => {
    const chain = await start(tlsServer(stores, 'pkcs12', ['keys: [ localhost ]', 'trust: [ kafka ]']));
    chains.push(chain);
    const port = chain.port();
    const [key, cert] = await Promise.all([
      readFile(join(stores.dir, 'other.key'), 'utf8'),
      readFile(join(stores.dir, 'other.pem'), 'utf8'),
    ]);
    const mutual = await presented(port, { ca: stores.caPem, servername: 'localhost', key, cert });
    assert.equal(mutual.subject.CN, 'localhost');
    const refused = tlsConnect({ host: '127.0.0.1', port, ca: stores.caPem, servername: 'localhost' });
    const outcome = await new Promise<string>((resolve) => {
      refused.on('error', (error: NodeJS.ErrnoException) => resolve(String(error.code ?? error.message)));
      refused.on('data', () => resolve('data'));
      refused.on('end', () => resolve('end'));
    });
    refused.destroy();
    assert.notEqual(outcome, 'data', 'a client without a certificate got through');
  });
});

describe('tls client trusting a vault alias', () => {
  let stores: TestStores;

  before(async () => {
    stores = await makeTestStores(await mkdtemp(join(tmpdir(), 'kgate-tls-client-vault-')));
  });

  after(async () => {
    await rm(stores.dir, { recursive: true, force: true });
  });

  it('accepts a server whose certificate the alias issued, and refuses one another CA issued', async () => {
    const [key, cert] = await Promise.all([
      readFile(join(stores.dir, 'localhost.key'), 'utf8'),
      readFile(join(stores.dir, 'localhost.pem'), 'utf8'),
    ]);
    const server = createTlsServer({ key, cert }, (socket) => socket.end('ok'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    assert.ok(address !== null && typeof address === 'object');
    // A second trust store whose alias `kafka` is a different CA, as a wrong store would hold.
    const otherDir = join(stores.dir, 'other-ca');
    await mkdir(otherDir);
    const otherCa = await createTestCa(otherDir, 'another CA');
    const otherTrust = join(otherDir, 'trust.p12');
    await promisify(execFile)('keytool', [
      '-importcert',
      '-noprompt',
      '-alias',
      'kafka',
      '-file',
      otherCa.certFile,
      '-storetype',
      'pkcs12',
      '-keystore',
      otherTrust,
      '-storepass',
      stores.password,
    ]);
    const connect = (trustStore: string): Promise<string> => {
      const tls = tlsConnectionOptions(tlsOptions({ trust: ['kafka'], sni: ['localhost'] }), {
        name: 'clients',
        trust: { store: trustStore, type: 'pkcs12', password: stores.password },
      });
      return new Promise((resolve) => {
        const socket = tlsConnect({ host: '127.0.0.1', port: address.port, ...tls });
        socket.on('secureConnect', () => {
          socket.destroy();
          resolve('connected');
        });
        socket.on('error', (error: NodeJS.ErrnoException) => resolve(String(error.code)));
      });
    };
    try {
      assert.equal(await connect(stores.trustP12), 'connected');
      assert.match(
        await connect(otherTrust),
        /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY/,
      );
    } finally {
      server.close();
    }
  });
});

function pemBody(pem: string): string {
  return pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
}
