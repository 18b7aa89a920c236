import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connectError, reservePort } from '../support/ports.ts';
import { staticSiteYaml } from '../support/static-site.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'bin', 'kgate.js');

let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kgate-fatal-'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

it(
  'exits non-zero with a fatal last log line on an uncaught error, leaving no port open',
  { timeout: 30_000 },
  async () => {
    const port = await reservePort();
    const site = join(dir, 'site');
    await mkdir(site);
    await writeFile(join(site, 'index.html'), '<p>up</p>');
    const file = join(dir, 'kgate.yaml');
    await writeFile(file, staticSiteYaml('fatal-e2e', port, site));
    const kgate = spawn(process.execPath, [BIN, 'start', '-c', file, '--cache-dir', join(dir, 'cache')], {
      cwd: ROOT,
      env: {
        PATH: process.env['PATH'] ?? '',
        HOME: process.env['HOME'] ?? '',
        KGATE_LOG_LEVEL: 'info',
        KGATE_TEST_FAULT: 'uncaught-after-start',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    kgate.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    // A process that outlives its fault is the defect under test: fail rather than wait forever.
    const watchdog = setTimeout(() => kgate.kill('SIGKILL'), 20_000);
    const code = await new Promise<number | null>((resolve) =>
      kgate.on('close', (exitCode) => resolve(exitCode)),
    );
    clearTimeout(watchdog);
    assert.notEqual(code, 0, stderr);
    assert.match(stderr, /"msg":"kgate started"/, 'the fault came after start');
    const lines = stderr.trim().split('\n');
    const last = JSON.parse(lines[lines.length - 1] ?? '{}') as Record<string, unknown>;
    assert.equal(last['level'], 60, `last line is fatal:\n${stderr}`);
    assert.match(String(last['msg']), /injected test fault: uncaught-after-start/);
    assert.equal(last['origin'], 'uncaughtException');
    assert.equal(await connectError(port), 'ECONNREFUSED');
  },
);
