import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startKafka, type KafkaCluster } from '../../src/embedded/kafka/index.ts';
import { reservePort } from '../support/ports.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'bin', 'kgate.js');

interface Exit {
  readonly code: number | null;
  readonly stderr: string;
}

/** A `kgate start` process as a user runs it, with its stderr kept for diagnosing failures. */
class Kgate {
  readonly child: ChildProcess;
  stderr = '';
  readonly exited: Promise<Exit>;

  constructor(args: readonly string[]) {
    this.child = spawn(process.execPath, [BIN, ...args], {
      cwd: ROOT,
      env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '', KGATE_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve, reject) => {
      this.child.on('error', reject);
      this.child.on('close', (code) => resolve({ code, stderr: this.stderr }));
    });
  }
}

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(10_000) });
  return { status: response.status, body: await response.text() };
}

/** Polls until `check` holds, failing with the last answer after `timeoutMs`. */
async function until(
  what: string,
  check: () => Promise<{ ok: boolean; last: string }>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const result = await check();
      if (result.ok) return;
      last = result.last;
    } catch (error) {
      last = String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  assert.fail(`${what} within ${timeoutMs} ms; last: ${last}`);
}

function config(bootstrap: string, port: number): string {
  return [
    'name: telemetry-e2e',
    'telemetry:',
    '  exporters:',
    '    prometheus_exporter:',
    '      type: prometheus',
    '      options:',
    `        endpoints: [ { scheme: http, path: /metrics, port: ${port} } ]`,
    'bindings:',
    '  kafka_client:',
    '    type: kafka',
    '    kind: client',
    '    options:',
    `      servers: ["${bootstrap}"]`,
    '',
  ].join('\n');
}

describe('kgate telemetry', () => {
  let kafka: KafkaCluster;
  let dir: string;
  const running: Kgate[] = [];

  before(async () => {
    [kafka, dir] = await Promise.all([startKafka(), mkdtemp(join(tmpdir(), 'kgate-telemetry-'))]);
  });

  after(async () => {
    for (const kgate of running) kgate.child.kill('SIGKILL');
    await kafka?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves metrics, health and readiness that follows the broker, and stops on SIGTERM', async () => {
    const port = await reservePort();
    const file = join(dir, 'kgate.yaml');
    await writeFile(file, config(kafka.bootstrap, port));
    const kgate = new Kgate(['start', '-c', file, '--cache-dir', join(dir, 'cache')]);
    running.push(kgate);
    await until('kgate answers /health', async () => {
      const health = await get(port, '/health');
      return { ok: health.status === 200, last: `${health.status} ${kgate.stderr}` };
    });
    assert.deepEqual(await get(port, '/health'), { status: 200, body: 'ok\n' });

    const metrics = await get(port, '/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.body, /^kgate_kafka_client_requests_total\{[^}]*binding="kafka_client"[^}]*\} \d+/m);
    assert.match(metrics.body, /^kgate_process_resident_memory_bytes \d+/m);

    assert.deepEqual(await get(port, '/ready'), { status: 200, body: '{"ready":true,"problems":[]}\n' });

    const broker = kafka.brokerIds[0];
    assert.ok(broker !== undefined);
    await kafka.stopBroker(broker);
    let notReady = '';
    await until('/ready turns 503 after the broker stopped', async () => {
      const ready = await get(port, '/ready');
      notReady = ready.body;
      return { ok: ready.status === 503, last: `${ready.status} ${ready.body}` };
    });
    const body = JSON.parse(notReady) as { ready: boolean; problems: { binding?: string; reason: string }[] };
    assert.equal(body.ready, false);
    assert.equal(body.problems.length, 1, notReady);
    assert.equal(body.problems[0]?.binding, 'kafka_client');
    assert.match(body.problems[0]?.reason ?? '', /^no live Kafka broker connection: /);
    // Liveness is not readiness: the process is fine and must not be restarted for a broker outage.
    assert.equal((await get(port, '/health')).status, 200);

    await kafka.startBroker(broker);
    await until('/ready returns to 200 after the broker came back', async () => {
      const ready = await get(port, '/ready');
      return { ok: ready.status === 200, last: `${ready.status} ${ready.body}` };
    });

    kgate.child.kill('SIGTERM');
    const exit = await kgate.exited;
    assert.equal(exit.code, 0, exit.stderr);
    await assert.rejects(get(port, '/health'));
  });

  it('exits 1 with one line when the telemetry port is in use', async () => {
    // The broker the test before stopped is back, though telemetry no longer waits for it.
    for (const id of kafka.brokerIds) await kafka.startBroker(id);
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, resolve));
    const address = blocker.address();
    assert.ok(address !== null && typeof address === 'object');
    try {
      const file = join(dir, 'busy.yaml');
      await writeFile(file, config(kafka.bootstrap, address.port));
      const kgate = new Kgate(['start', '-c', file, '--cache-dir', join(dir, 'cache-busy')]);
      running.push(kgate);
      const exit = await kgate.exited;
      assert.equal(exit.code, 1, exit.stderr);
      const lines = exit.stderr
        .trim()
        .split('\n')
        .filter((line) => !line.startsWith('{'));
      assert.deepEqual(lines, [
        `kgate: telemetry prometheus_exporter: port ${address.port} is already in use`,
      ]);
      assert.doesNotMatch(exit.stderr, /\n\s+at /);
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });
});
