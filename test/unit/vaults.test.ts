import { strict as assert } from 'node:assert';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tlsConnectionOptions } from '../../src/bindings/kafka/client/config.ts';
import { tlsOptions } from '../../src/bindings/tls/options.ts';
import { serverTls } from '../../src/bindings/tls/server.ts';
import { ConfigError, formatDiagnostic, parseConfig } from '../../src/config/index.ts';
import { readStore, Vault, VaultError } from '../../src/vaults/vault.ts';
import { makeTestStores, type TestStores } from '../support/stores.ts';

const yaml = (...lines: string[]): string => lines.join('\n') + '\n';

function subjectOf(pem: string): string {
  return new X509Certificate(pem).subject;
}

describe('filesystem vaults', () => {
  let stores: TestStores;

  before(async () => {
    stores = await makeTestStores(await mkdtemp(join(tmpdir(), 'kgate-vaults-')));
  });
  after(async () => {
    await rm(stores.dir, { recursive: true, force: true });
  });

  it('reads the aliases of a PKCS#12 key store and of a keytool trust store', () => {
    const keys = readStore({ store: stores.keysP12, type: 'pkcs12', password: stores.password });
    assert.deepEqual([...keys.keys.keys()].sort(), ['localhost', 'other']);
    const localhost = keys.keys.get('localhost');
    assert.ok(localhost);
    // The key's chain reaches the CA, which openssl put in the store without a name.
    assert.equal(localhost.chain.length, 2);
    assert.equal(subjectOf(localhost.chain[0] ?? ''), 'CN=localhost');
    assert.equal(subjectOf(localhost.chain[1] ?? ''), subjectOf(stores.caPem));
    const trust = readStore({ store: stores.trustP12, type: 'pkcs12', password: stores.password });
    assert.deepEqual([...trust.certificates.keys()].sort(), ['ca', 'kafka']);
    assert.equal(trust.keys.size, 0);
  });

  it('reads a PEM store named by friendlyName lines, and a jks-typed store that is PKCS#12 inside', () => {
    const pem = readStore({ store: stores.keysPem, type: 'pem' });
    assert.deepEqual([...pem.keys.keys()], ['localhost']);
    const jksTyped = readStore({ store: stores.trustP12, type: 'jks', password: stores.password });
    assert.deepEqual([...jksTyped.certificates.keys()].sort(), ['ca', 'kafka']);
  });

  it('refuses a wrong password, an old JKS store and a missing file, naming the file', () => {
    const wrong = (): unknown => readStore({ store: stores.keysP12, type: 'pkcs12', password: 'nope' });
    assert.throws(wrong, (error: unknown) => {
      assert.ok(error instanceof VaultError);
      assert.equal(error.field, 'password');
      assert.equal(error.message, `${stores.keysP12}: wrong password for the PKCS#12 store`);
      return true;
    });
    assert.throws(
      () => readStore({ store: stores.trustJks, type: 'jks', password: stores.password }),
      /old JKS format.*keytool -importkeystore/,
    );
    assert.throws(
      () => readStore({ store: join(stores.dir, 'absent.p12'), type: 'pkcs12' }),
      /cannot read store file .*absent\.p12 \(ENOENT\)/,
    );
  });

  it('resolves aliases case-insensitively, signers to the keys they issued, and names a missing alias', () => {
    const vault = new Vault({
      name: 'server',
      keys: { store: stores.keysP12, type: 'pkcs12', password: stores.password },
      trust: { store: stores.trustP12, type: 'pkcs12', password: stores.password },
      signers: { store: stores.trustP12, type: 'pkcs12', password: stores.password },
    });
    assert.equal(vault.keys(['LocalHost'])[0]?.alias, 'localhost');
    assert.deepEqual(
      vault
        .signers(['ca'])
        .map((entry) => entry.alias)
        .sort(),
      ['localhost', 'other'],
    );
    assert.throws(
      () => vault.keys(['absent']),
      new RegExp(`^Error: alias absent is not a key in ${stores.keysP12} \\(it holds localhost, other\\)$`),
    );
    assert.throws(() => vault.trust(['localhost']), /alias localhost is not a certificate in .*trust\.p12/);
  });

  it('builds a server context per key and a kafka client trust from aliases', () => {
    const vault = {
      name: 'v',
      keys: { store: stores.keysP12, type: 'pkcs12' as const, password: stores.password },
      trust: { store: stores.trustP12, type: 'pkcs12' as const, password: stores.password },
    };
    const server = serverTls(tlsOptions({ keys: ['localhost', 'other'] }), vault);
    assert.equal(server.byName.length, 2);
    assert.equal(server.requestCert, false);
    const requiring = serverTls(tlsOptions({ keys: ['localhost'], trust: ['kafka'] }), vault);
    assert.equal(requiring.rejectUnauthorized, true);
    const client = tlsConnectionOptions(tlsOptions({ trust: ['kafka'], sni: ['localhost'] }), vault);
    assert.deepEqual(client.ca, [new X509Certificate(stores.caPem).toString()]);
    assert.equal(client.servername, 'localhost');
    // A client certificate for brokers that ask for one, by alias, with its chain.
    const mutual = tlsConnectionOptions(tlsOptions({ keys: ['other'], trust: ['kafka'] }), vault);
    assert.equal(typeof mutual.key, 'string');
    assert.equal(subjectOf(String(mutual.cert)), 'CN=other');
  });

  describe('validate', () => {
    const file = (): string => join(stores.dir, 'kgate.yaml');
    const config = (password: string, alias: string): string =>
      yaml(
        'vaults:',
        '  server:',
        '    type: filesystem',
        '    options:',
        '      keys:',
        '        store: keys.p12',
        `        password: "${password}"`,
        'bindings:',
        '  tcp: { type: tcp, kind: server, options: { port: 1 }, exit: tls }',
        '  tls:',
        '    type: tls',
        '    kind: server',
        '    vault: server',
        '    options:',
        `      keys: [ ${alias} ]`,
        '    exit: http',
        '  http: { type: http, kind: server, routes: [] , exit: files }',
        '  files: { type: filesystem, kind: server, options: { location: /nonexistent } }',
      );
    const errorsOf = (text: string, env: NodeJS.ProcessEnv = {}): string[] => {
      try {
        parseConfig(text, file(), env);
      } catch (error) {
        assert.ok(error instanceof ConfigError, String(error));
        return error.diagnostics.map(formatDiagnostic);
      }
      assert.fail('expected a ConfigError');
    };

    it('accepts a vault whose stores open and whose aliases exist, resolving the store beside the file', () => {
      const loaded = parseConfig(config(stores.password, 'localhost'), file(), {});
      assert.equal(loaded.bindings.get('tls')?.vault?.keys?.store, stores.keysP12);
      assert.deepEqual(loaded.warnings, []);
    });

    it('names the file for a wrong password, without the password', () => {
      const errors = errorsOf(config('${{env.KEYS_PASSWORD}}', 'localhost'), { KEYS_PASSWORD: 'wrong-one' });
      assert.deepEqual(errors, [
        `kgate.yaml:7:19 vaults.server.options.keys.password: ${stores.keysP12}: wrong password for the PKCS#12 store`,
      ]);
      assert.doesNotMatch(errors.join('\n'), /wrong-one/);
    });

    it('names the alias and the file for a missing alias', () => {
      assert.deepEqual(errorsOf(config(stores.password, 'localhots')), [
        `kgate.yaml:15:15 bindings.tls.options.keys[0]: alias localhots is not a key in ${stores.keysP12} (it holds localhost, other)`,
      ]);
    });

    it('refuses an unknown vault, and says how entries are read without one', async () => {
      const unknown = config(stores.password, 'localhost').replace('vault: server', 'vault: servr');
      assert.deepEqual(errorsOf(unknown), [
        'kgate.yaml:13:12 bindings.tls.vault: no vault named "servr"; did you mean "server"?',
      ]);
      // Read from a file: without a vault, keys entries are PEM paths, and `localhost` is none.
      const without = config(stores.password, 'localhost').replace('    vault: server\n', '');
      await writeFile(file(), without);
      const { loadConfigFile } = await import('../../src/config/index.ts');
      await assert.rejects(loadConfigFile(file(), {}), (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(
          error.message,
          /bindings\.tls\.options\.keys\[0\]: cannot read TLS keys file localhost \(ENOENT\): without a `vault` on the binding, entries are PEM file paths; name a vault to use them as aliases/,
        );
        return true;
      });
    });
  });
});
