import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startKafka, type KafkaCluster } from '../../src/embedded/kafka/index.ts';
import { reservePort } from '../support/ports.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'bin', 'kgate.js');
const ENV = { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '', KGATE_LOG_LEVEL: 'info' };

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(args: readonly string[]): Promise<Run> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: ENV });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function config(bootstrap: string, port: number): string {
  return [
    'name: status-e2e',
    'telemetry:',
    '  exporters:',
    '    prometheus_exporter:',
    '      type: prometheus',
    '      options:',
    `        endpoints: [ { scheme: http, path: /metrics, port: ${port} } ]`,
    'bindings:',
    '  cache: { type: kafka, kind: cache_server, options: { bootstrap: [events] }, exit: south }',
    `  south: { type: kafka, kind: client, options: { servers: ["${bootstrap}"] } }`,
    '',
  ].join('\n');
}

/** The cells of the status output's row that starts with these cells, split on runs of spaces. */
function row(output: string, ...start: string[]): string[] | undefined {
  return output
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .find((cells) => start.every((cell, i) => cells[i] === cell));
}

describe('kgate status', () => {
  let kafka: KafkaCluster;
  let dir: string;
  let gateway: ChildProcess | undefined;

  before(async () => {
    [kafka, dir] = await Promise.all([startKafka(), mkdtemp(join(tmpdir(), 'kgate-status-'))]);
  });

  after(async () => {
    gateway?.kill('SIGKILL');
    await kafka?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('prints the bindings healthy and the cached partitions caught up', { timeout: 60_000 }, async () => {
    await kafka.createTopic('events', { partitions: 2 });
    await kafka.produce('events', [
      { key: 'a', value: '1', partition: 0 },
      { key: 'b', value: '2', partition: 0 },
      { key: 'c', value: '3', partition: 0 },
      { key: 'd', value: '4', partition: 1 },
      { key: 'e', value: '5', partition: 1 },
    ]);
    const port = await reservePort();
    const file = join(dir, 'kgate.yaml');
    await writeFile(file, config(kafka.bootstrap, port));
    const child = spawn(process.execPath, [BIN, 'start', '-c', file, '--cache-dir', join(dir, 'cache')], {
      cwd: ROOT,
      env: ENV,
    });
    gateway = child;
    let logs = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (logs += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (logs += chunk));

    const deadline = Date.now() + 30_000;
    let last: Run | undefined;
    for (;;) {
      last = await run(['status', '-c', file]);
      const p0 = row(last.stdout, 'events', '0');
      const p1 = row(last.stdout, 'events', '1');
      // TOPIC PARTITION FIRST LAST NEXT HIGH-WATERMARK LAG ...: LAST is cell 3, LAG cell 6
      if (last.code === 0 && p0?.[3] === '2' && p1?.[3] === '1' && p0[6] === '0' && p1[6] === '0') break;
      assert.ok(
        Date.now() < deadline,
        `status never showed events caught up: ${JSON.stringify(last)}\n${logs}`,
      );
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    assert.equal(last.stderr, '');
    assert.deepEqual(row(last.stdout, 'cache'), ['cache', 'kafka', 'cache_server', 'ok']);
    assert.deepEqual(row(last.stdout, 'south'), ['south', 'kafka', 'client', 'ok']);
    // FIRST LAST NEXT HIGH-WATERMARK LAG MESSAGES, then BYTES (encoding-dependent) and BOOTSTRAP
    const p0 = row(last.stdout, 'events', '0') ?? [];
    assert.deepEqual(p0.slice(2, 8), ['0', '2', '3', '3', '0', '3'], last.stdout);
    assert.ok(Number(p0[8]) > 0, last.stdout);
    assert.equal(p0[9], 'yes');

    const byUrl = await run(['status', '--url', `http://127.0.0.1:${port}`]);
    assert.equal(byUrl.code, 0, byUrl.stderr);
    assert.match(byUrl.stdout, /^cache cache$/m);

    // The warm-up report says once that the bootstrap topic has everything the broker had.
    const caughtUp = Date.now() + 15_000;
    while (!logs.includes('bootstrap topic caught up')) {
      assert.ok(Date.now() < caughtUp, `no caught-up log:\n${logs}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  });

  it('says in one line that no kgate answers, and exits 1', async () => {
    const port = await reservePort();
    const file = join(dir, 'idle.yaml');
    await writeFile(file, config(kafka.bootstrap, port));
    const result = await run(['status', '-c', file]);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, '');
    assert.equal(
      result.stderr,
      `kgate: no running kgate answers at http://127.0.0.1:${port}/status (is telemetry configured and kgate started?)\n`,
    );
  });
});
