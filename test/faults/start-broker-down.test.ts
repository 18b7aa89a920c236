// `kgate start` before its broker, as an orchestrator that starts things in any order does it.
// Before, nothing listened (not even /health) until a broker answered, and the default 30 s start
// timeout exited 1 when the broker took 34 s. Now the listeners and /health answer at once, /ready
// and the requests that need Kafka answer 503 saying why, and once the broker is up kgate serves,
// without a restart; only an explicit --start-timeout makes it give up.
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startKafka, type KafkaCluster } from '../../src/embedded/kafka/index.ts';
import { openEventStream } from '../support/event-stream.ts';
import { reservePort } from '../support/ports.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'bin', 'kgate.js');
const TOPIC = 'items';
/** The start timeout kgate had by default before, which exited 1 past it. */
const OLD_DEFAULT_START_TIMEOUT_MS = 30_000;
/**
 * "At once": answers take milliseconds, and a request that waited for Kafka instead would take its
 * route's kafka-timeout (30 s), so the bound sits far from both.
 */
const AT_ONCE_MS = 10_000;

let kafka: KafkaCluster;
let dir: string;
const children: ChildProcess[] = [];

before(async () => {
  [kafka, dir] = await Promise.all([startKafka(), mkdtemp(join(tmpdir(), 'kgate-start-down-'))]);
  await kafka.createTopic(TOPIC, { partitions: 2 });
});

after(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await kafka?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

function config(port: number, telemetryPort: number): string {
  return `
name: start-down
telemetry:
  exporters:
    prometheus:
      type: prometheus
      options: { endpoints: [{ scheme: http, path: /metrics, port: ${telemetryPort} }] }
bindings:
  tcp: { type: tcp, kind: server, options: { host: 127.0.0.1, port: ${port} }, exit: http }
  http:
    type: http
    kind: server
    routes:
      - when: [{ headers: { ":path": "/events" } }]
        exit: sse
    exit: rest
  sse: { type: sse, kind: server, exit: events }
  events:
    type: sse-kafka
    kind: proxy
    routes:
      - when: [{ path: /events }]
        exit: north
        with: { topic: ${TOPIC} }
  rest:
    type: http-kafka
    kind: proxy
    routes:
      - when: [{ method: GET, path: "/items/{id}" }]
        exit: north
        with: { capability: fetch, topic: ${TOPIC}, filters: [{ key: "\${params.id}" }] }
      - when: [{ method: PUT, path: "/items/{id}" }]
        exit: north
        with: { capability: produce, topic: ${TOPIC}, key: "\${params.id}" }
  north: { type: kafka, kind: cache_client, exit: cache }
  cache: { type: kafka, kind: cache_server, exit: south }
  south: { type: kafka, kind: client, options: { servers: ["${kafka.bootstrap}"] } }
`;
}

interface Kgate {
  readonly child: ChildProcess;
  readonly started: number;
  stderr(): string;
  readonly exited: Promise<number | null>;
}

function startKgate(file: string, extra: readonly string[] = []): Kgate {
  const child = spawn(
    process.execPath,
    [BIN, 'start', '-c', file, '--cache-dir', join(dir, 'cache'), ...extra],
    {
      cwd: ROOT,
      env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '', KGATE_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  children.push(child);
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, started: Date.now(), stderr: () => stderr, exited };
}

interface Answer {
  readonly status: number;
  readonly retryAfter: string | null;
  readonly body: string;
}

async function send(port: number, method: string, path: string, body?: string): Promise<Answer> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    ...(body === undefined ? {} : { body }),
    signal: AbortSignal.timeout(2 * AT_ONCE_MS),
  });
  return {
    status: response.status,
    retryAfter: response.headers.get('retry-after'),
    body: await response.text(),
  };
}

/** Polls `check` until it holds; resolves with the ms it took. */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<number> {
  const started = Date.now();
  let last: unknown;
  while (Date.now() - started < timeoutMs) {
    try {
      if (await check()) return Date.now() - started;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${what} within ${timeoutMs} ms${last === undefined ? '' : `: ${String(last)}`}`);
}

describe('kgate started before its broker', () => {
  it('listens at once, answers 503 saying why, and serves once the broker is up, with no start timeout', async () => {
    const [broker] = kafka.brokerIds;
    assert.ok(broker !== undefined);
    await kafka.stopBroker(broker);
    const [port, telemetry] = [await reservePort(), await reservePort()];
    const file = join(dir, 'kgate.yaml');
    await writeFile(file, config(port, telemetry));
    const kgate = startKgate(file);

    // /health as soon as the process is up (node's own start is most of this), Kafka or not.
    const healthMs = await until(
      '/health answers',
      async () => (await send(telemetry, 'GET', '/health')).status === 200,
    );
    const ready = await send(telemetry, 'GET', '/ready');
    assert.equal(ready.status, 503, ready.body);
    assert.ok(ready.retryAfter !== null, '/ready 503 says when to ask again');
    assert.match(ready.body, /"binding":"south","reason":"no live Kafka broker connection: /);

    // Requests that need Kafka fail at once, saying why, rather than each waiting out its deadline.
    for (const [method, path, body] of [
      ['GET', '/items/a', undefined],
      ['PUT', '/items/a', '{"v":1}'],
    ] as const) {
      const t0 = Date.now();
      const answer = await send(port, method, path, body);
      assert.equal(answer.status, 503, `${method} ${path}: ${answer.body}`);
      assert.ok(answer.retryAfter !== null, `${method} ${path}: Retry-After`);
      assert.match(answer.body, /Kafka has not answered since kgate started: Kafka not reachable at /);
      assert.ok(Date.now() - t0 < AT_ONCE_MS, `${method} ${path} answered after ${Date.now() - t0} ms`);
    }
    const events = await openEventStream(port, '/events');
    const [failed] = await events.waitFor(1, AT_ONCE_MS);
    events.close();
    assert.equal(failed?.type, 'error');
    assert.match(failed?.data ?? '', /Kafka has not answered since kgate started/);

    // Past the start timeout kgate used to have by default, it is still running.
    const left = kgate.started + OLD_DEFAULT_START_TIMEOUT_MS + 3_000 - Date.now();
    if (left > 0) await new Promise((resolve) => setTimeout(resolve, left));
    assert.equal(kgate.child.exitCode, null, `kgate exited:\n${kgate.stderr()}`);
    assert.equal((await send(telemetry, 'GET', '/health')).status, 200);

    const brokerStarted = Date.now();
    await kafka.startBroker(broker);
    const brokerUpMs = Date.now() - brokerStarted;
    const readyMs = await until(
      '/ready answers 200',
      async () => (await send(telemetry, 'GET', '/ready')).status === 200,
    );
    const putMs = await until(
      'a PUT is served',
      async () => (await send(port, 'PUT', '/items/a', '{"v":2}')).status === 204,
    );
    const got = await send(port, 'GET', '/items/a');
    assert.equal(got.status, 200, got.body);
    assert.equal(got.body, '{"v":2}');
    process.stdout.write(
      `# start: /health after ${healthMs} ms; broker down ${Math.round((brokerStarted - kgate.started) / 1000)} s, ` +
        `up in ${brokerUpMs} ms, then /ready 200 after ${readyMs} ms and a PUT served after ${putMs} ms\n`,
    );

    // Its retries with backoff find the broker too, and say so.
    await until(
      'kgate logs that Kafka is reachable',
      () => Promise.resolve(/"msg":"Kafka reachable"/.test(kgate.stderr())),
      10_000,
    );
    kgate.child.kill('SIGTERM');
    assert.equal(await kgate.exited, 0, kgate.stderr());
    // The wait and its end, once each.
    assert.equal(kgate.stderr().match(/"msg":"Kafka not reachable yet, retrying"/g)?.length, 1);
    assert.equal(kgate.stderr().match(/"msg":"Kafka reachable"/g)?.length, 1);
  });

  it('with --start-timeout answers /health meanwhile, then exits 1 saying why when not ready in time', async () => {
    const [broker] = kafka.brokerIds;
    assert.ok(broker !== undefined);
    await kafka.stopBroker(broker);
    const [port, telemetry] = [await reservePort(), await reservePort()];
    const file = join(dir, 'timeout.yaml');
    await writeFile(file, config(port, telemetry));
    const kgate = startKgate(file, ['--start-timeout', '6']);
    await until('/health answers while kgate waits for its broker', async () => {
      return (await send(telemetry, 'GET', '/health')).status === 200;
    });
    assert.equal(await kgate.exited, 1, kgate.stderr());
    const elapsed = Date.now() - kgate.started;
    assert.ok(elapsed >= 6_000, `exited after ${elapsed} ms`);
    assert.match(
      kgate.stderr(),
      /^kgate: binding south failed to start: Kafka not reachable at [^\n]*ECONNREFUSED/m,
    );
  });
});
