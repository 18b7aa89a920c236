import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
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
  stdout = '';
  readonly exited: Promise<Exit>;

  constructor(args: readonly string[]) {
    this.child = spawn(process.execPath, [BIN, ...args], {
      cwd: ROOT,
      env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '', KGATE_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (this.stdout += chunk));
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

/** A config in the shape of Zilla's http.kafka.cache, with telemetry as Zilla's http.metrics has it. */
function zillaConfig(bootstrap: string, httpPort: number, metricsPort: number): string {
  return `name: example
telemetry:
  metrics:
    - http.duration
    - http.request.size
    - http.response.size
    - http.active.requests
    - stream.opens.received
    - stream.opens.sent
    - stream.closes.received
    - stream.active.received
    - stream.data.received
    - stream.data.sent
  exporters:
    stdout_logs_exporter:
      type: stdout
    prometheus_exporter:
      type: prometheus
      options:
        endpoints:
          - scheme: http
            port: ${metricsPort}
            path: /metrics
bindings:
  north_tcp_server:
    type: tcp
    kind: server
    options:
      host: 127.0.0.1
      port: ${httpPort}
    exit: north_http_server
    telemetry:
      metrics:
        - stream.*
  north_http_server:
    type: http
    kind: server
    routes:
      - when:
          - headers:
              :scheme: http
        exit: north_http_kafka_mapping
    telemetry:
      metrics:
        - http.*
        - stream.opens.*
  north_http_kafka_mapping:
    type: http-kafka
    kind: proxy
    routes:
      - when:
          - method: GET
            path: /items
        exit: north_kafka_cache_client
        with:
          capability: fetch
          topic: items-snapshots
          merge:
            content-type: application/json
      - when:
          - method: GET
            path: /items/{id}
        exit: north_kafka_cache_client
        with:
          capability: fetch
          topic: items-snapshots
          filters:
            - key: \${params.id}
  north_kafka_cache_client:
    type: kafka
    kind: cache_client
    exit: south_kafka_cache_server
  south_kafka_cache_server:
    type: kafka
    kind: cache_server
    options:
      bootstrap:
        - items-snapshots
    exit: south_kafka_client
  south_kafka_client:
    type: kafka
    kind: client
    options:
      servers:
        - ${bootstrap}
`;
}

/** Sends `request` on a connection of its own and returns all the server wrote until it closed. */
async function exchange(port: number, request: string): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  let text = '';
  socket.setEncoding('latin1').on('data', (chunk: string) => (text += chunk));
  socket.write(request);
  await once(socket, 'close');
  return text;
}

/** Every sample of a Prometheus text page, by `name{labels}`. */
function samples(page: string): Map<string, number> {
  const found = new Map<string, number>();
  for (const line of page.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    found.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return found;
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

  it("serves Zilla's metrics, named and labelled as Zilla's exporters do, and prints its events", async () => {
    await kafka.createTopic('items-snapshots', { partitions: 1, configs: { 'cleanup.policy': 'compact' } });
    await kafka.produce('items-snapshots', [
      { key: '1', value: '{"id":1}', headers: { 'content-type': 'application/json' } },
      { key: '2', value: '{"id":2,"name":"pear"}', headers: { 'content-type': 'application/json' } },
    ]);
    const [httpPort, metricsPort] = [await reservePort(), await reservePort()];
    const file = join(dir, 'zilla.yaml');
    await writeFile(file, zillaConfig(kafka.bootstrap.split(',')[0] ?? '', httpPort, metricsPort));
    const kgate = new Kgate(['start', '-c', file, '--cache-dir', join(dir, 'cache-zilla')]);
    running.push(kgate);
    const request = (path: string): string =>
      `GET ${path} HTTP/1.1\r\nHost: localhost:${httpPort}\r\nConnection: close\r\n\r\n`;
    await until('the cache serves both items', async () => {
      const answer = await exchange(httpPort, request('/items/2'));
      return { ok: answer.startsWith('HTTP/1.1 200'), last: `${answer} ${kgate.stderr}` };
    });
    const metricsOf = async (): Promise<Map<string, number>> =>
      samples((await get(metricsPort, '/metrics')).body);
    // Connections close after their answer; wait until the tcp server has seen the last one go.
    const settled = async (): Promise<Map<string, number>> => {
      let last = new Map<string, number>();
      await until('every connection closed', async () => {
        last = await metricsOf();
        const active = last.get('stream_active_received{namespace="example",binding="north_tcp_server"}');
        return { ok: active === 0, last: String(active) };
      });
      return last;
    };
    const before = await settled();

    const paths = ['/items', '/items/1', '/items/2?access_token=secret', '/items/3'];
    const sent = paths.map(request);
    const answers = await Promise.all(sent.map((text) => exchange(httpPort, text)));
    assert.deepEqual(
      answers.map((answer) => answer.slice(0, 12)),
      ['HTTP/1.1 200', 'HTTP/1.1 200', 'HTTP/1.1 200', 'HTTP/1.1 404'],
    );
    const bodyBytes = answers.map((answer) => Number(/\r\ncontent-length: (\d+)\r\n/i.exec(answer)?.[1]));
    assert.ok(
      bodyBytes.every((n) => Number.isInteger(n) && n > 0),
      answers.join('\n'),
    );
    const after = await settled();
    const delta = (series: string, binding: string, labels = ''): number => {
      const key = `${series}{${labels}namespace="example",binding="${binding}"}`;
      const value = after.get(key);
      assert.ok(value !== undefined, `no ${key} in the scrape`);
      return value - (before.get(key) ?? 0);
    };

    const http = 'north_http_server';
    assert.equal(delta('http_duration_milliseconds_count', http), 4);
    assert.equal(delta('http_request_size_bytes_count', http), 4);
    assert.equal(delta('http_request_size_bytes_bucket', http, 'le="2",'), 4, 'GETs have no body');
    assert.equal(delta('http_request_size_bytes_sum', http), 0);
    assert.equal(delta('http_response_size_bytes_count', http), 4);
    assert.equal(
      delta('http_response_size_bytes_sum', http),
      bodyBytes.reduce((a, b) => a + b, 0),
    );
    assert.equal(delta('http_response_size_bytes_bucket', http, 'le="+Inf",'), 4);
    assert.equal(after.get(`http_active_requests{namespace="example",binding="${http}"}`), 0);
    assert.equal(delta('stream_opens_received_total', http), 4);
    assert.equal(delta('stream_opens_sent_total', http), 4);

    const tcp = 'north_tcp_server';
    assert.equal(delta('stream_opens_received_total', tcp), 4);
    assert.equal(delta('stream_closes_received_total', tcp), 4);
    assert.equal(delta('stream_data_received_bytes_total', tcp), sent.join('').length);
    assert.equal(delta('stream_data_sent_bytes_total', tcp), answers.join('').length);

    // Each binding has what its own telemetry selects, and nothing else.
    const keys = [...after.keys()];
    assert.deepEqual(
      keys.filter((key) => key.includes(`binding="${tcp}"`) && key.startsWith('http_')),
      [],
    );
    assert.deepEqual(
      keys.filter((key) => key.startsWith('stream_closes_received_total') && key.includes(http)),
      [],
    );
    assert.deepEqual(
      keys.filter((key) => key.includes('binding="south_kafka_client"') && /^(http|stream)_/.test(key)),
      [],
    );
    // kgate's own series stay beside Zilla's.
    assert.ok(
      after.has('kgate_http_server_requests_total{binding="north_http_server",method="GET",status="2xx"}'),
    );
    const page = (await get(metricsPort, '/metrics')).body;
    assert.match(page, /^# TYPE http_duration_milliseconds histogram$/m);
    assert.match(page, /^# TYPE stream_opens_received_total counter$/m);
    assert.match(page, /^# TYPE stream_active_received gauge$/m);

    kgate.child.kill('SIGTERM');
    const exit = await kgate.exited;
    assert.equal(exit.code, 0, exit.stderr);
    const lines = kgate.stdout.split('\n').filter((line) => line !== '');
    const stamp = String.raw`\[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] \[0{16}d\]`;
    assert.match(lines[0] ?? '', new RegExp(`^engine:events ${stamp} ENGINE_STARTED Engine Started\\.$`));
    assert.match(lines.at(-1) ?? '', new RegExp(`^engine:events ${stamp} ENGINE_STOPPED Engine Stopped\\.$`));
    const accepted = lines
      .filter((line) => line.includes(' BINDING_HTTP_REQUEST_ACCEPTED '))
      .map((line) => {
        assert.match(line, new RegExp(`^example:north_http_server ${stamp} BINDING_HTTP_REQUEST_ACCEPTED `));
        return line.slice(line.indexOf(' BINDING_HTTP_REQUEST_ACCEPTED ') + 31);
      });
    // The query string stays out of the line: it may carry a credential.
    for (const path of ['/items', '/items/1', '/items/2', '/items/3'])
      assert.ok(accepted.includes(`- GET http://localhost:${httpPort}${path}`), accepted.join('\n'));
    assert.doesNotMatch(kgate.stdout, /secret/);
  });

  it('prints a broker connection failure as Zilla does, naming the address that refused', async () => {
    const deadPort = await reservePort();
    const file = join(dir, 'dead-broker.yaml');
    await writeFile(
      file,
      [
        'name: example',
        'telemetry:',
        '  exporters:',
        '    stdout_logs_exporter:',
        '      type: stdout',
        'bindings:',
        '  south_kafka_client:',
        '    type: kafka',
        '    kind: client',
        '    options:',
        `      servers: ["127.0.0.1:${deadPort}"]`,
        '',
      ].join('\n'),
    );
    const kgate = new Kgate(['start', '-c', file, '--cache-dir', join(dir, 'cache-dead')]);
    running.push(kgate);
    const failed = new RegExp(
      String.raw`^example:south_kafka_client \[[^\]]+\] \[0{16}d\] BINDING_KAFKA_BROKER_CONNECTION_FAILED ` +
        String.raw`Broker connection failed for host \(127\.0\.0\.1\), port \(${deadPort}\)\.$`,
      'm',
    );
    await until('the failed connection is printed', () =>
      Promise.resolve({ ok: failed.test(kgate.stdout), last: kgate.stdout + kgate.stderr }),
    );
    kgate.child.kill('SIGTERM');
    assert.equal((await kgate.exited).code, 0);
  });
});
