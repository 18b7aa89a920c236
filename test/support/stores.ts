import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createTestCa, issueCertificate, type TestCa } from '../../src/embedded/kafka/index.ts';

const run = promisify(execFile);

/** Key stores made fresh for a test, as a Zilla user would make them with openssl and keytool. */
export interface TestStores {
  readonly dir: string;
  readonly password: string;
  readonly ca: TestCa;
  readonly caPem: string;
  /** PKCS#12 (openssl): the key `localhost` with its chain up to the CA, and `other` for 127.0.0.1. */
  readonly keysP12: string;
  /** PKCS#12 (keytool): the CA's certificate as the trusted entry `kafka`, and as the signer `ca`. */
  readonly trustP12: string;
  /** The keys store written out as PEM by `openssl pkcs12 -nodes`: entries named by `friendlyName:` lines. */
  readonly keysPem: string;
  /** The trust store in the old JKS format (keytool -storetype jks). */
  readonly trustJks: string;
  /** The leaf certificates' PEM by alias, to compare with what a TLS peer presents. */
  readonly leaves: { readonly localhost: string; readonly other: string };
}

async function tool(command: string, args: readonly string[], cwd: string): Promise<void> {
  try {
    await run(command, args, { cwd });
  } catch (error) {
    const detail = (error as { stderr?: string }).stderr ?? String(error);
    throw new Error(`${command} ${args[0] ?? ''} failed: ${detail}`, { cause: error });
  }
}

export async function makeTestStores(dir: string, password = 'store-pass-1'): Promise<TestStores> {
  const ca = await createTestCa(dir);
  const [localhost, other] = await Promise.all([
    issueCertificate(ca, dir, 'localhost', ['DNS:localhost']),
    issueCertificate(ca, dir, 'other', ['DNS:other.test', 'IP:127.0.0.1']),
  ]);
  const part = (name: string) => join(dir, name);
  const pass = `pass:${password}`;
  await tool(
    'openssl',
    [
      'pkcs12',
      '-export',
      '-name',
      'localhost',
      '-inkey',
      localhost.keyFile,
      '-in',
      localhost.certFile,
    ].concat(['-certfile', ca.certFile, '-out', part('localhost.p12'), '-passout', pass]),
    dir,
  );
  await tool(
    'openssl',
    ['pkcs12', '-export', '-name', 'other', '-inkey', other.keyFile, '-in', other.certFile].concat([
      '-out',
      part('other.p12'),
      '-passout',
      pass,
    ]),
    dir,
  );
  // keytool merges the two into one store, as a Zilla user would build a keys store of several keys.
  for (const alias of ['localhost', 'other']) {
    await tool(
      'keytool',
      ['-importkeystore', '-noprompt', '-srckeystore', part(`${alias}.p12`), '-srcstoretype', 'pkcs12']
        .concat(['-srcstorepass', password, '-destkeystore', part('keys.p12'), '-deststoretype', 'pkcs12'])
        .concat(['-deststorepass', password]),
      dir,
    );
  }
  for (const alias of ['kafka', 'ca']) {
    await tool(
      'keytool',
      ['-importcert', '-noprompt', '-alias', alias, '-file', ca.certFile, '-storetype', 'pkcs12'].concat([
        '-keystore',
        part('trust.p12'),
        '-storepass',
        password,
      ]),
      dir,
    );
  }
  await tool(
    'keytool',
    ['-importcert', '-noprompt', '-alias', 'kafka', '-file', ca.certFile, '-storetype', 'jks'].concat([
      '-keystore',
      part('trust.jks'),
      '-storepass',
      password,
    ]),
    dir,
  );
  await tool(
    'openssl',
    ['pkcs12', '-in', part('localhost.p12'), '-nodes', '-passin', pass, '-out', part('keys.pem')],
    dir,
  );
  const [caPem, localhostPem, otherPem] = await Promise.all([
    readFile(ca.certFile, 'utf8'),
    readFile(localhost.certFile, 'utf8'),
    readFile(other.certFile, 'utf8'),
  ]);
  return {
    dir,
    password,
    ca,
    caPem,
    keysP12: part('keys.p12'),
    trustP12: part('trust.p12'),
    keysPem: part('keys.pem'),
    trustJks: part('trust.jks'),
    leaves: { localhost: localhostPem, other: otherPem },
  };
}
