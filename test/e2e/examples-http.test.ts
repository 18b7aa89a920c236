import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startKafka, type KafkaCluster } from '../../src/embedded/kafka/index.ts';
import { freePort } from '../support/ports.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const JSON_HEADERS = { 'content-type': 'application/json' };

let kafka: KafkaCluster;
let cacheDir: string;
let port: number;
let child: ChildProcess;
let exited: Promise<number | null>;
let output = '';

before(async () => {
  kafka = await startKafka();
  // One partition each, so that the merged document's order is the produce order.
  await kafka.createTopic('items-snapshots', { partitions: 1, configs: { 'cleanup.policy': 'compact' } });
  await kafka.createTopic('items-requests', { partitions: 1 });
  await kafka.createTopic('items-responses', { partitions: 1 });
  await kafka.produce('items-snapshots', [
    { key: '1', value: '{"id":1,"name":"apple"}', headers: JSON_HEADERS },
    { key: '2', value: '{"id":2,"name":"pear"}', headers: JSON_HEADERS },
  ]);
  cacheDir = await mkdtemp(join(tmpdir(), 'kgate-e2e-examples-'));
  port = await freePort();
  const env: Record<string, string> = { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '' };
  env['KAFKA_BOOTSTRAP_SERVER'] = kafka.bootstrap.split(',')[0] ?? '';
  env['KGATE_HTTP_PORT'] = String(port);
  env['KGATE_LOG_LEVEL'] = 'warn';
  child = spawn(
    process.execPath,
    [
      join(ROOT, 'bin', 'kgate.js'),
      'start',
      '-c',
      join(ROOT, 'examples', 'http-kafka-request-reply.yaml'),
      '--cache-dir',
      cacheDir,
    ],
    { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  exited = new Promise((resolve) => child.on('close', (code) => resolve(code)));
  const deadline = Date.now() + 30_000;
  for (;;) {
    assert.equal(child.exitCode, null, `kgate exited early:\n${output}`);
    try {
      const res = await fetch(url('/items'));
      await res.arrayBuffer();
      if (res.status === 200) break;
    } catch {
      // Not listening yet.
    }
    assert.ok(Date.now() < deadline, `kgate did not come up:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
});

after(async () => {
  if (child !== undefined && child.exitCode === null) child.kill('SIGKILL');
  await kafka?.stop();
  if (cacheDir !== undefined) await rm(cacheDir, { recursive: true, force: true });
});

function url(path: string): string {
  return `http://127.0.0.1:${port}${path}`;
}

/** GETs until the status is the expected one: a produce is acknowledged before the cache has it. */
async function getUntil(path: string, status: number): Promise<Response> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const res = await fetch(url(path));
    if (res.status === status || Date.now() > deadline) return res;
    await res.arrayBuffer();
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('kgate start -c examples/http-kafka-request-reply.yaml', { timeout: 60_000 }, () => {
  it('serves the snapshot, single items with ETags, and writes', async () => {
    const all = await fetch(url('/items'));
    assert.equal(all.status, 200);
    assert.equal(all.headers.get('content-type'), 'application/json');
    assert.equal(await all.text(), '[{"id":1,"name":"apple"},{"id":2,"name":"pear"}]');

    const one = await fetch(url('/items/1'));
    assert.equal(one.status, 200);
    assert.equal(one.headers.get('content-type'), 'application/json');
    assert.equal(await one.text(), '{"id":1,"name":"apple"}');
    const etag = one.headers.get('etag');
    assert.ok(etag !== null);
    const unchanged = await fetch(url('/items/1'), { headers: { 'if-none-match': etag } });
    assert.equal(unchanged.status, 304);
    assert.equal(await unchanged.text(), '');

    const put = await fetch(url('/items/3'), {
      method: 'PUT',
      headers: JSON_HEADERS,
      body: '{"id":3,"name":"plum"}',
    });
    assert.equal(put.status, 204);
    assert.equal(await put.text(), '');
    const plum = await getUntil('/items/3', 200);
    assert.equal(plum.status, 200);
    assert.equal(await plum.text(), '{"id":3,"name":"plum"}');
    const merged = await fetch(url('/items'));
    assert.equal(
      await merged.text(),
      '[{"id":1,"name":"apple"},{"id":2,"name":"pear"},{"id":3,"name":"plum"}]',
    );

    const del = await fetch(url('/items/3'), { method: 'DELETE' });
    assert.equal(del.status, 204);
    await del.text();
    const gone = await getUntil('/items/3', 404);
    assert.equal(gone.status, 404);
    await gone.text();
    const remaining = await fetch(url('/items'));
    assert.equal(await remaining.text(), '[{"id":1,"name":"apple"},{"id":2,"name":"pear"}]');
  });

  it('round-trips a request and its reply through Kafka', async () => {
    const accepted = await fetch(url('/requests'), {
      method: 'POST',
      headers: { prefer: 'respond-async', 'content-type': 'text/plain' },
      body: 'ping',
    });
    assert.equal(accepted.status, 202);
    assert.equal(await accepted.text(), '');
    const location = accepted.headers.get('location') ?? '';
    const cid = /^\/requests;cid=([0-9a-f-]{36})$/.exec(location)?.[1];
    assert.ok(cid !== undefined, location);

    const pending = await fetch(url(location));
    assert.equal(pending.status, 202);
    assert.equal(pending.headers.get('location'), location);
    await pending.text();

    // The service behind Kafka answers on the reply topic with the request's correlation id.
    await kafka.produce('items-responses', [
      {
        value: 'pong',
        headers: { 'zilla:correlation-id': cid, 'content-type': 'text/plain', ':status': '201' },
      },
    ]);
    const reply = await fetch(url(location), { headers: { prefer: 'wait=20' } });
    assert.equal(reply.status, 201);
    assert.equal(reply.headers.get('content-type'), 'text/plain');
    assert.equal(await reply.text(), 'pong');
  });

  it('exits 0 on SIGTERM', async () => {
    child.kill('SIGTERM');
    assert.equal(await exited, 0, output);
  });
});
