import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { reservePort } from '../support/ports.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

it('kgate demo serves the sample items over HTTP and stops on SIGINT', { timeout: 180_000 }, async () => {
  const port = await reservePort();
  const env: Record<string, string> = { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '' };
  env['KGATE_DEMO_PORT'] = String(port);
  env['KGATE_LOG_LEVEL'] = 'warn';
  if (process.env['KGATE_KAFKA_LIBS'] !== undefined)
    env['KGATE_KAFKA_LIBS'] = process.env['KGATE_KAFKA_LIBS'];
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'kgate.js'), 'demo', '--exit-after', '150'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  try {
    const deadline = Date.now() + 120_000;
    while (!stdout.includes('Try next:')) {
      assert.ok(Date.now() < deadline, `demo did not come up:\n${stdout}\n${stderr}`);
      assert.equal(child.exitCode, null, `demo exited early:\n${stdout}\n${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.match(stdout, new RegExp(`curl http://127\\.0\\.0\\.1:${port}/items`));
    const response = await fetch(`http://127.0.0.1:${port}/items`);
    assert.equal(response.status, 200);
    const items = (await response.json()) as { name: string }[];
    assert.deepEqual(items.map((item) => item.name).sort(), ['apple', 'pear', 'plum']);
  } finally {
    child.kill('SIGINT');
  }
  assert.equal(await exited, 0, stderr);
});
