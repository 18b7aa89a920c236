import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startKafka, type KafkaCluster } from '../../src/embedded/kafka/index.ts';
import { consumeMessages } from '../integration/embedded-kafka-clients.ts';
import { reservePort } from '../support/ports.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'bin', 'kgate.js');
const REQUESTS = 50;

function config(bootstrap: string, port: number): string {
  return [
    'name: drain-e2e',
    'bindings:',
    '  tcp:',
    '    type: tcp',
    '    kind: server',
    `    options: { host: 127.0.0.1, port: ${port} }`,
    '    exit: http',
    '  http: { type: http, kind: server, exit: rest }',
    '  rest:',
    '    type: http-kafka',
    '    kind: proxy',
    '    routes:',
    '      - when: [{ method: PUT, path: "/items/{id}" }]',
    '        exit: north',
    '        with: { capability: produce, topic: items, key: "${params.id}" }',
    '      - when: [{ method: GET, path: /missing }]',
    '        exit: north',
    '        with: { capability: fetch, topic: missing }',
    '  north: { type: kafka, kind: cache_client, exit: cache }',
    '  cache: { type: kafka, kind: cache_server, options: { bootstrap: [items] }, exit: south }',
    `  south: { type: kafka, kind: client, options: { servers: ["${bootstrap}"] } }`,
    '',
  ].join('\n');
}

interface Sent {
  readonly socket: Socket;
  /** The whole answer once the server closed the connection; rejects on a reset. */
  readonly answer: Promise<string>;
}

/** Writes one complete request on its own connection and resolves once it is handed to the kernel. */
async function send(port: number, method: string, path: string, body = ''): Promise<Sent> {
  const socket = connect(port, '127.0.0.1');
  let text = '';
  socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  const answer = new Promise<string>((resolve, reject) => {
    socket.once('error', reject);
    socket.once('end', () => resolve(text));
  });
  answer.catch(() => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const request =
    `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
  await new Promise<void>((resolve, reject) =>
    socket.write(request, (error) => (error ? reject(error) : resolve())),
  );
  return { socket, answer };
}

function statusOf(answer: string): number {
  const match = /^HTTP\/1\.1 (\d{3}) /.exec(answer);
  assert.ok(match, `a complete HTTP answer, got ${JSON.stringify(answer.slice(0, 200))}`);
  return Number(match[1]);
}

let kafka: KafkaCluster;
let dir: string;
let child: ChildProcess | undefined;

before(async () => {
  [kafka, dir] = await Promise.all([startKafka(), mkdtemp(join(tmpdir(), 'kgate-drain-'))]);
  await kafka.createTopic('items', { partitions: 3 });
});

after(async () => {
  child?.kill('SIGKILL');
  await kafka?.stop();
  await rm(dir, { recursive: true, force: true });
});

it(
  'answers every request in flight at SIGTERM, produces each one, and exits 0',
  { timeout: 60_000 },
  async () => {
    const port = await reservePort();
    const file = join(dir, 'kgate.yaml');
    await writeFile(file, config(kafka.bootstrap, port));
    const kgate = spawn(process.execPath, [BIN, 'start', '-c', file, '--cache-dir', join(dir, 'cache')], {
      cwd: ROOT,
      env: {
        PATH: process.env['PATH'] ?? '',
        HOME: process.env['HOME'] ?? '',
        KGATE_LOG_LEVEL: process.env['KGATE_LOG_LEVEL'] ?? 'info',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child = kgate;
    let stderr = '';
    kgate.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => kgate.on('close', (code) => resolve(code)));
    const deadline = Date.now() + 20_000;
    while (!stderr.includes('kgate started')) {
      assert.ok(Date.now() < deadline && kgate.exitCode === null, `kgate did not start:\n${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    // A request failing in its handler answers that request alone; one beside it still succeeds.
    const [failing, warmup] = await Promise.all([
      send(port, 'GET', '/missing'),
      send(port, 'PUT', '/items/warmup', '{"id":"warmup"}'),
    ]);
    const [failed, warmed] = await Promise.all([failing.answer, warmup.answer]);
    assert.equal(statusOf(failed), 404, failed);
    assert.match(failed, /topic "missing" does not exist|missing/);
    assert.equal(statusOf(warmed), 204, warmed);

    const ids = Array.from({ length: REQUESTS }, (_, i) => `item-${i}`);
    const sent = await Promise.all(
      ids.map((id) => send(port, 'PUT', `/items/${id}`, JSON.stringify({ id }))),
    );
    kgate.kill('SIGTERM');
    const answers = await Promise.allSettled(sent.map((s) => s.answer));
    const code = await exited;
    const failures = answers.flatMap((a, i) =>
      a.status === 'fulfilled' && /^HTTP\/1\.1 204 /.test(a.value)
        ? []
        : [`${ids[i] ?? i}: ${a.status === 'rejected' ? String(a.reason) : a.value.slice(0, 200)}`],
    );
    assert.deepEqual(failures, [], `every request in flight answered 204\n${stderr}`);
    assert.equal(code, 0, stderr);
    assert.match(stderr, /"msg":"stopped"/);

    const messages = await consumeMessages(kafka.bootstrap, 'items', REQUESTS + 1, { timeoutMs: 20_000 });
    const keys = new Set(messages.map((m) => String(m.key)));
    for (const id of ids) assert.ok(keys.has(id), `${id} in Kafka`);
  },
);
