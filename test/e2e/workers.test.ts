import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connectError, reservePort } from '../support/ports.ts';
import { staticSiteYaml } from '../support/static-site.ts';

// `kgate start --workers 2` as users run it (bin/kgate.js, from dist): the worker threads serve on
// the same port, stop with the process, and take it down when one of them dies.

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'bin', 'kgate.js');

let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kgate-workers-e2e-'));
  await mkdir(join(dir, 'site'));
  await writeFile(join(dir, 'site', 'index.html'), '<p>up</p>');
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function configFile(port: number): Promise<string> {
  const file = join(dir, `kgate-${port}.yaml`);
  await writeFile(file, staticSiteYaml('workers-e2e', port, join(dir, 'site')));
  return file;
}

interface Started {
  readonly kgate: ChildProcess;
  stderr(): string;
  exited: Promise<number | null>;
}

function start(file: string, env: Record<string, string> = {}): Started {
  const kgate = spawn(process.execPath, [BIN, 'start', '-c', file, '--workers', '2'], {
    cwd: ROOT,
    env: {
      PATH: process.env['PATH'] ?? '',
      HOME: process.env['HOME'] ?? '',
      KGATE_LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  kgate.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  // A process that outlives what the test does to it is the defect under test: never wait forever.
  const watchdog = setTimeout(() => kgate.kill('SIGKILL'), 40_000);
  const exited = new Promise<number | null>((resolve) =>
    kgate.on('close', (code) => {
      clearTimeout(watchdog);
      resolve(code);
    }),
  );
  return { kgate, stderr: () => stderr, exited };
}

async function waitForLog(started: Started, pattern: RegExp): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!pattern.test(started.stderr())) {
    if (Date.now() > deadline) throw new Error(`no ${pattern} in:\n${started.stderr()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function get(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/index.html', agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('kgate start --workers', { timeout: 60_000 }, () => {
  it('serves from three threads on one port and stops cleanly on SIGTERM', async () => {
    const port = await reservePort();
    const started = start(await configFile(port));
    await waitForLog(started, /"msg":"kgate started"/);
    const listening = started.stderr().match(/"msg":"listening"/g) ?? [];
    assert.equal(listening.length, 3, 'the main thread and two workers listen');
    const statuses = await Promise.all(Array.from({ length: 12 }, () => get(port)));
    assert.deepEqual(new Set(statuses), new Set([200]));
    started.kgate.kill('SIGTERM');
    assert.equal(await started.exited, 0, started.stderr());
    assert.equal(await connectError(port), 'ECONNREFUSED');
  });

  it('exits 1 with a fatal last line when a worker thread dies', async () => {
    const port = await reservePort();
    const started = start(await configFile(port), { KGATE_TEST_FAULT: 'worker-exit-after-start' });
    const code = await started.exited;
    const stderr = started.stderr();
    assert.equal(code, 1, stderr);
    assert.match(stderr, /"msg":"kgate started"/, 'the worker died after start');
    const lines = stderr.trim().split('\n');
    const last = JSON.parse(lines[lines.length - 1] ?? '{}') as Record<string, unknown>;
    assert.equal(last['level'], 60, `last line is fatal:\n${stderr}`);
    assert.match(String(last['msg']), /worker thread 1 exited unexpectedly with code 3/);
    assert.equal(await connectError(port), 'ECONNREFUSED');
  });
});
