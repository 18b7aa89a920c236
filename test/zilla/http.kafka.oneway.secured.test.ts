import { strict as assert } from 'node:assert';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startKafka, unsecuredToken, type KafkaCluster } from '../../src/embedded/kafka/index.ts';
import { kcatPartition } from '../support/kcat-topic.ts';
import { reservePort } from '../support/ports.ts';
import { until } from '../support/until.ts';

// Zilla's http.kafka.oneway examples with the Kafka side secured: through a tls client trusting
// an alias of a filesystem vault, and with SASL OAUTHBEARER from an inline guard. Each README
// POSTs to /events and expects 204, then the event in the `events` topic.

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CONFIGS = join(ROOT, 'test', 'zilla', 'configs');
const KEYSTORE_PASSWORD = 'truststore-pass-1';
const run = promisify(execFile);

interface Kgate {
  readonly port: number;
  readonly child: ChildProcess;
  output: string;
}

let kafka: KafkaCluster;
let dir: string;
const started: Kgate[] = [];

/** The example's config, copied beside its generated stores as a user would lay them out. */
async function exampleFile(example: string): Promise<string> {
  const file = join(dir, `${example}.yaml`);
  await writeFile(file, await readFile(join(CONFIGS, `${example}.yaml`), 'utf8'));
  return file;
}

function kgateArgs(command: 'start' | 'validate', file: string): string[] {
  return [join(ROOT, 'bin', 'kgate.js'), command, '-c', file];
}

function baseEnv(extra: Record<string, string>): Record<string, string> {
  return {
    PATH: process.env['PATH'] ?? '',
    HOME: process.env['HOME'] ?? '',
    KGATE_LOG_LEVEL: 'info',
    ...extra,
  };
}

async function startKgate(file: string, env: Record<string, string>): Promise<Kgate> {
  const port = await reservePort();
  const child = spawn(process.execPath, [...kgateArgs('start', file), '--cache-dir', `${file}.cache`], {
    cwd: ROOT,
    env: baseEnv({ ...env, ZILLA_PORT: String(port) }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const kgate: Kgate = { port, child, output: '' };
  started.push(kgate);
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (kgate.output += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (kgate.output += chunk));
  await until(
    'kgate listening',
    async () => {
      assert.equal(child.exitCode, null, `kgate exited early:\n${kgate.output}`);
      try {
        const res = await fetch(`http://127.0.0.1:${port}/`);
        await res.arrayBuffer();
        return true;
      } catch {
        return false;
      }
    },
    30_000,
  );
  return kgate;
}

/** Exit code and output of `kgate validate`. */
async function validate(
  file: string,
  env: Record<string, string>,
): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, kgateArgs('validate', file), {
      cwd: ROOT,
      env: baseEnv(env),
    });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, output: (failed.stdout ?? '') + (failed.stderr ?? '') };
  }
}

async function postEvent(port: number, body: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  await res.arrayBuffer();
  return res.status;
}

async function eventValues(): Promise<string[]> {
  return (await kcatPartition(kafka.bootstrap.split(',')[0] ?? '', 'events', 0)).map((r) => r.value ?? '');
}

before(async () => {
  kafka = await startKafka();
  await kafka.createTopic('events', { partitions: 1 });
  dir = await mkdtemp(join(tmpdir(), 'kgate-zilla-oneway-'));
  await mkdir(join(dir, 'tls'));
  // A trust store named .jks, written by keytool in its default format (PKCS#12) since Java 9.
  await run('keytool', [
    '-importcert',
    '-noprompt',
    '-alias',
    'kafka',
    '-file',
    kafka.caFile,
    '-keystore',
    join(dir, 'tls', 'kafka.truststore.jks'),
    '-storepass',
    KEYSTORE_PASSWORD,
  ]);
});

after(async () => {
  for (const kgate of started) if (kgate.child.exitCode === null) kgate.child.kill('SIGKILL');
  await kafka?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('http.kafka.oneway through a tls client trusting a vault alias', () => {
  const env = (): Record<string, string> => ({
    KAFKA_BOOTSTRAP_SERVER: kafka.sslBootstrap.split(',')[0] ?? '',
    KEYSTORE_PASSWORD,
    ZILLA_PORT: '7114',
  });

  it('answers 204 to the README POST and the event reaches Kafka over TLS', async () => {
    const kgate = await startKgate(await exampleFile('http.kafka.oneway.tls'), env());
    assert.equal(await postEvent(kgate.port, '{"greeting":"Hello, world"}'), 204, kgate.output);
    await until('the event in Kafka', async () =>
      (await eventValues()).includes('{"greeting":"Hello, world"}'),
    );
    assert.doesNotMatch(kgate.output, new RegExp(KEYSTORE_PASSWORD));
  });

  it('fails validate for a wrong store password, naming the store and not the password', async () => {
    const result = await validate(await exampleFile('http.kafka.oneway.tls'), {
      ...env(),
      KEYSTORE_PASSWORD: 'not-the-password',
    });
    assert.equal(result.code, 1, result.output);
    assert.match(
      result.output,
      /http\.kafka\.oneway\.tls\.yaml:\d+:\d+ vaults\.your_clients\.options\.trust\.password: .*kafka\.truststore\.jks: wrong password for the PKCS#12 store/,
    );
    assert.doesNotMatch(result.output, /not-the-password/);
  });

  it('fails validate for a trust alias the store lacks, naming the alias and the store', async () => {
    const file = await exampleFile('http.kafka.oneway.tls');
    await writeFile(file, (await readFile(file, 'utf8')).replace('        - kafka\n', '        - kafak\n'));
    const result = await validate(file, env());
    assert.equal(result.code, 1, result.output);
    assert.match(
      result.output,
      /bindings\.south_tls_client\.options\.trust\[0\]: alias kafak is not a certificate in .*kafka\.truststore\.jks \(it holds kafka\)/,
    );
  });
});

describe('http.kafka.oneway.oauthbearer', () => {
  it('answers 204 to the README POST, the event reaching Kafka over SASL OAUTHBEARER', async () => {
    const token = unsecuredToken('zilla-service-account');
    const kgate = await startKgate(await exampleFile('http.kafka.oneway.oauthbearer'), {
      KAFKA_BOOTSTRAP_SERVER: kafka.oauthBootstrap.split(',')[0] ?? '',
      KAFKA_SASL_TOKEN: token,
    });
    assert.equal(await postEvent(kgate.port, '{"message":"Hello, world"}'), 204, kgate.output);
    await until('the event in Kafka', async () =>
      (await eventValues()).includes('{"message":"Hello, world"}'),
    );
    assert.ok(!kgate.output.includes(token.split('.')[1] ?? token), 'the token is never logged');
    assert.doesNotMatch(kgate.output, /guards: not supported/);
  });
});
