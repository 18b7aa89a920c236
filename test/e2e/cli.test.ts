import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'bin', 'kgate.js');
const SEED_ENV = {
  KAFKA_BOOTSTRAP_SERVER: 'localhost:9092',
  SASL_USERNAME: 'alice',
  SASL_PASSWORD: 'alice-secret',
};

interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the installed `kgate` command the way a user does, with a clean environment. */
export function kgate(
  args: readonly string[],
  env: Record<string, string> = {},
  cwd = ROOT,
): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd,
      env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('kgate CLI', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kgate-cli-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('prints its version', async () => {
    const { version } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const result = await kgate(['--version']);
    assert.equal(result.code, 0);
    assert.equal(result.stdout.trim(), version);
  });

  it('accepts the seed configuration with its environment set', async () => {
    const result = await kgate(['validate', '-c', 'examples/seed.yaml'], SEED_ENV);
    assert.equal(result.stderr, '');
    assert.equal(result.stdout, 'seed.yaml: valid, 3 bindings\n');
    assert.equal(result.code, 0);
  });

  it('rejects a broken copy of the seed with every error, positioned', async () => {
    const seed = await readFile(join(ROOT, 'examples', 'seed.yaml'), 'utf8');
    const broken = seed
      .replace('mechanism: scram-sha-256', 'mechanism: scram-sha-1')
      .replace('exit: kafka_cache_server', 'exit: kafka_cache_servr');
    const file = join(dir, 'kgate.yaml');
    await writeFile(file, broken);
    const result = await kgate(['validate', '-c', file], SEED_ENV);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, '');
    const lines = result.stderr.trim().split('\n');
    assert.equal(lines.length, 2, result.stderr);
    assert.match(
      lines[0] ?? '',
      /^kgate\.yaml:3:\d+ bindings\.kafka_cache_client\.exit: no binding named "kafka_cache_servr"/,
    );
    assert.match(
      lines[1] ?? '',
      /^kgate\.yaml:10:\d+ bindings\.kafka_client\.options\.sasl\.mechanism: must be one of plain, scram-sha-256, scram-sha-512, oauthbearer$/,
    );
  });

  it('names an unset environment variable and where it is used', async () => {
    const result = await kgate(['validate', '-c', 'examples/seed.yaml'], {
      SASL_USERNAME: 'a',
      SASL_PASSWORD: 'b',
    });
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /^seed\.yaml:9:\d+ bindings\.kafka_client\.options\.servers\[0\]: environment variable KAFKA_BOOTSTRAP_SERVER is not set\n$/,
    );
  });

  it('gives one clear line for a file that cannot be read', async () => {
    const result = await kgate(['validate', '-c', join(dir, 'missing.yaml')]);
    assert.equal(result.code, 1);
    assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
    assert.match(result.stderr, /missing\.yaml/);
    assert.doesNotMatch(result.stderr, /\n\s+at /);
  });

  it('looks for ./kgate.yaml, then ./zilla.yaml, and says so when neither exists', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'kgate-cli-empty-'));
    try {
      const none = await kgate(['validate'], {}, empty);
      assert.equal(none.code, 1);
      assert.equal(
        none.stderr,
        `kgate: no config file: pass -c FILE, or create kgate.yaml or zilla.yaml in ${empty}\n`,
      );
      await writeFile(
        join(empty, 'zilla.yaml'),
        'name: z\nbindings:\n  c: { type: kafka, kind: client, options: { servers: [localhost:9092] } }\n',
      );
      const zilla = await kgate(['validate'], {}, empty);
      assert.equal(zilla.stdout, 'zilla.yaml: valid, 1 binding\n');
      assert.equal(zilla.code, 0);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });

  it('fails to start with one line when the broker cannot be reached', async () => {
    const file = join(dir, 'unreachable.yaml');
    await writeFile(
      file,
      'name: u\nbindings:\n  kafka_client:\n    type: kafka\n    kind: client\n    options:\n      servers: ["127.0.0.1:1"]\n',
    );
    const started = Date.now();
    const result = await kgate(
      ['start', '-c', file, '--cache-dir', join(dir, 'cache'), '--start-timeout', '2'],
      {
        KGATE_LOG_LEVEL: 'silent',
      },
    );
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /^kgate: binding kafka_client failed to start: Kafka not reachable at 127\.0\.0\.1:1: .*ECONNREFUSED/,
    );
    assert.ok(Date.now() - started >= 2000, 'retried until the start deadline');
    assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
  });
  it('prints no substituted value in validate or start output', async () => {
    const env = { SASL_PASSWORD: 'hunter2-s3cret', BROKER: '127.0.0.1:1' };
    const leaky = join(dir, 'leaky.yaml');
    await writeFile(
      leaky,
      [
        'name: leaky',
        'bindings:',
        '  kafka_client:',
        '    type: kafka',
        '    kind:',
        '      sasl: { mechanism: plain, username: alice, password: "${{env.SASL_PASSWORD}}" }',
        '  other: { type: kafka, kind: "${{env.SASL_PASSWORD}}" }',
        '',
      ].join('\n'),
    );
    for (const command of ['validate', 'start']) {
      const args = command === 'start' ? ['--cache-dir', join(dir, 'cache')] : [];
      const result = await kgate([command, '-c', leaky, ...args], env);
      assert.equal(result.code, 1);
      assert.doesNotMatch(result.stdout + result.stderr, /hunter2/, `${command}: ${result.stderr}`);
      assert.match(result.stderr, /bindings\.other\.kind: unknown kind "\$\{\{env\.SASL_PASSWORD\}\}"/);
    }
    // A binding's start error and every log line quote the broker's address: the reference shows instead.
    const unreachable = join(dir, 'unreachable-env.yaml');
    await writeFile(
      unreachable,
      'name: u\nbindings:\n  kafka_client:\n    type: kafka\n    kind: client\n    options:\n      servers: ["${{env.BROKER}}"]\n',
    );
    const start = await kgate(
      ['start', '-c', unreachable, '--cache-dir', join(dir, 'cache'), '--start-timeout', '1'],
      env,
    );
    assert.equal(start.code, 1);
    assert.doesNotMatch(start.stdout + start.stderr, /127\.0\.0\.1:1/, start.stderr);
    assert.match(
      start.stderr,
      /^kgate: binding kafka_client failed to start: Kafka not reachable at \$\{\{env\.BROKER\}\}: /m,
    );
    assert.match(start.stderr, /"msg":"Kafka not reachable yet, retrying"/);
  });

  it('logs human-readable lines with --pretty and JSON lines without', async () => {
    const file = join(dir, 'pretty.yaml');
    await writeFile(
      file,
      'name: p\nbindings:\n  kafka_client:\n    type: kafka\n    kind: client\n    options:\n      servers: ["127.0.0.1:1"]\n',
    );
    const args = ['start', '-c', file, '--cache-dir', join(dir, 'cache'), '--start-timeout', '1'];
    const pretty = await kgate([...args, '--pretty']);
    assert.equal(pretty.code, 1);
    assert.match(
      pretty.stderr,
      /^\[\d{4}-\d\d-\d\d [\d:.]+ [+-]\d{4}\] WARN \(\d+\): Kafka not reachable yet, retrying$/m,
    );
    assert.match(pretty.stderr, /^ {4}binding: "kafka_client"$/m);
    const json = await kgate(args);
    assert.equal(json.code, 1);
    const first = JSON.parse(json.stderr.split('\n')[0] ?? '') as {
      level: number;
      msg: string;
      binding: string;
    };
    assert.equal(first.level, 40);
    assert.equal(first.msg, 'Kafka not reachable yet, retrying');
    assert.equal(first.binding, 'kafka_client');
  });
});
