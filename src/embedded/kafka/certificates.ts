import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestCa {
  /** PEM certificate of the CA; what clients trust. */
  readonly certFile: string;
  readonly keyFile: string;
}

export interface IssuedCertificate {
  readonly certFile: string;
  /** Unencrypted PKCS#8 PEM key, the form Kafka's PEM key store accepts without a password. */
  readonly keyFile: string;
  /** Key, leaf certificate and CA certificate in one PEM file: a Kafka `ssl.keystore.type=PEM` key store. */
  readonly keyStoreFile: string;
}

async function openssl(args: readonly string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd });
  } catch (error) {
    const detail = (error as { stderr?: string }).stderr ?? String(error);
    throw new Error(`openssl ${args[0] ?? ''} failed: ${detail}`, { cause: error });
  }
}

/** EC P-256 keys: generating them is instant, unlike RSA, and every TLS stack involved accepts them. */
const KEY_ARGS = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A throwaway CA, valid for a few days: long enough for any test run, useless if it leaks. */
export async function createTestCa(dir: string, name = 'kgate test CA'): Promise<TestCa> {
  const certFile = join(dir, 'ca.pem');
  const keyFile = join(dir, 'ca.key');
  await openssl(
    [
      'req',
      '-x509',
      ...KEY_ARGS,
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '7',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  return { certFile, keyFile };
}

/**
 * A server (and client) certificate signed by `ca`. Subject alternative names matter: Node and
 * librdkafka verify the host name against them, and every embedded broker listens on 127.0.0.1.
 */
export async function issueCertificate(
  ca: TestCa,
  dir: string,
  name: string,
  altNames: readonly string[] = ['DNS:localhost', 'IP:127.0.0.1'],
): Promise<IssuedCertificate> {
  const keyFile = join(dir, `${name}.key`);
  const csrFile = join(dir, `${name}.csr`);
  const certFile = join(dir, `${name}.pem`);
  const extFile = join(dir, `${name}.ext`);
  const keyStoreFile = join(dir, `${name}.keystore.pem`);
  await openssl(['req', ...KEY_ARGS, '-keyout', keyFile, '-out', csrFile, '-subj', `/CN=${name}`], dir);
  await writeFile(
    extFile,
    [
      `subjectAltName=${altNames.join(',')}`,
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth,clientAuth',
      '',
    ].join('\n'),
  );
  await openssl(
    [
      'x509',
      '-req',
      '-in',
      csrFile,
      '-CA',
      ca.certFile,
      '-CAkey',
      ca.keyFile,
      '-set_serial',
      `0x${Date.now().toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`,
      '-days',
      '7',
      '-extfile',
      extFile,
      '-out',
      certFile,
    ],
    dir,
  );
  const [key, cert, caCert] = await Promise.all([
    readFile(keyFile, 'utf8'),
    readFile(certFile, 'utf8'),
    readFile(ca.certFile, 'utf8'),
  ]);
  await writeFile(keyStoreFile, `${key.trim()}\n${cert.trim()}\n${caCert.trim()}\n`, { mode: 0o600 });
  return { certFile, keyFile, keyStoreFile };
}
