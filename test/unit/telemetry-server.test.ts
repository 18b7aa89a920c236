import { strict as assert } from 'node:assert';
import { connect, createServer } from 'node:net';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { Counter, Registry } from 'prom-client';
import { KafkaClient, KafkaClientBinding } from '../../src/bindings/kafka/client/index.ts';
import { parseConfig, type TelemetryConfig } from '../../src/config/index.ts';
import type { Binding } from '../../src/engine/binding.ts';
import { startTelemetry, type Telemetry } from '../../src/telemetry/index.ts';
import { reservePort } from '../support/ports.ts';

const logger = pino({ level: 'silent' });
const CONFIG = parseConfig(
  [
    'name: t',
    'bindings:',
    '  tcp: { type: tcp, kind: client }',
    '  kafka_client: { type: kafka, kind: client, options: { servers: ["127.0.0.1:1"] } }',
  ].join('\n'),
  'kgate.yaml',
  {},
);

function prometheus(port: number, path = '/metrics'): TelemetryConfig {
  return {
    exporters: [
      {
        name: 'prometheus_exporter',
        type: 'prometheus',
        endpoints: [{ scheme: 'http', host: '127.0.0.1', path, port }],
      },
    ],
  };
}

/** A started binding whose connection state the test controls. */
class FakeKafka implements Binding {
  readonly name = 'kafka_client';
  problem: string | undefined;
  hang = false;
  start(): Promise<void> {
    return Promise.resolve();
  }
  stop(): Promise<void> {
    return Promise.resolve();
  }
  connectionProblem(): Promise<string | undefined> {
    return this.hang ? new Promise(() => undefined) : Promise.resolve(this.problem);
  }
}

async function get(
  port: number,
  path: string,
  method = 'GET',
): Promise<{ status: number; type: string; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { method });
  return {
    status: response.status,
    type: response.headers.get('content-type') ?? '',
    body: await response.text(),
  };
}

describe('telemetry server', () => {
  it('serves metrics, health and readiness on the configured port and path', async () => {
    const port = await reservePort();
    const registry = new Registry();
    new Counter({ name: 'kgate_test_total', help: 'test', registers: [registry] }).inc(3);
    const kafka = new FakeKafka();
    const started = new Map<string, Binding>([['kafka_client', kafka]]);
    const telemetry = await startTelemetry({
      config: prometheus(port, '/prom'),
      metrics: registry,
      readiness: { config: CONFIG, binding: (name) => started.get(name) },
      logger,
      probeTimeoutMs: 200,
      // Each step below changes the broker state and expects the next answer to show it.
      probeReuseMs: 0,
    });
    try {
      assert.deepEqual(telemetry.ports, [port]);
      const metrics = await get(port, '/prom');
      assert.equal(metrics.status, 200);
      assert.match(metrics.type, /^text\/plain; version=0\.0\.4/);
      assert.match(metrics.body, /^kgate_test_total 3$/m);
      assert.match(metrics.body, /^kgate_process_resident_memory_bytes \d+/m);
      assert.match(metrics.body, /^# TYPE kgate_nodejs_eventloop_lag_seconds gauge$/m);
      assert.equal((await get(port, '/metrics')).status, 404);
      // A target that a URL parser takes for a scheme-relative reference is still a path.
      assert.equal((await get(port, '//')).status, 404);
      assert.equal((await get(port, '//x/health')).status, 404);
      assert.deepEqual(await get(port, '/health'), {
        status: 200,
        type: 'text/plain; charset=utf-8',
        body: 'ok\n',
      });
      assert.equal((await get(port, '/health', 'POST')).status, 405);
      assert.equal((await get(port, '/health', 'HEAD')).status, 200);

      const missing = await get(port, '/ready');
      assert.equal(missing.status, 503);
      assert.equal(missing.type, 'application/json');
      assert.deepEqual(JSON.parse(missing.body), {
        ready: false,
        problems: [{ binding: 'tcp', reason: 'not started' }],
      });

      started.set('tcp', { name: 'tcp', start: () => Promise.resolve(), stop: () => Promise.resolve() });
      assert.deepEqual(await get(port, '/ready'), {
        status: 200,
        type: 'application/json',
        body: '{"ready":true,"problems":[]}\n',
      });

      kafka.problem = 'connection to 127.0.0.1:9092 failed: connect ECONNREFUSED';
      const down = await get(port, '/ready');
      assert.equal(down.status, 503);
      assert.deepEqual(JSON.parse(down.body), {
        ready: false,
        problems: [
          {
            binding: 'kafka_client',
            reason:
              'no live Kafka broker connection: connection to 127.0.0.1:9092 failed: connect ECONNREFUSED',
          },
        ],
      });

      kafka.hang = true;
      const hanging = await get(port, '/ready');
      assert.equal(hanging.status, 503);
      assert.match(hanging.body, /no broker answered within 200 ms/);
    } finally {
      await telemetry.stop();
    }
    await assert.rejects(fetch(`http://127.0.0.1:${port}/health`));
  });

  it('shares one port between endpoints and does nothing without exporters', async () => {
    const port = await reservePort();
    const none = await startTelemetry({
      config: undefined,
      metrics: new Registry(),
      readiness: { config: CONFIG, binding: () => undefined },
      logger,
    });
    assert.deepEqual(none.ports, []);
    await none.stop();
    const both = await startTelemetry({
      config: {
        exporters: [
          {
            name: 'a',
            type: 'prometheus',
            endpoints: [{ scheme: 'http', host: '127.0.0.1', path: '/a', port }],
          },
          {
            name: 'b',
            type: 'prometheus',
            endpoints: [{ scheme: 'http', host: '127.0.0.1', path: '/b', port }],
          },
        ],
      },
      metrics: new Registry(),
      readiness: { config: CONFIG, binding: () => undefined },
      logger,
    });
    try {
      assert.deepEqual(both.ports, [port]);
      assert.equal((await get(port, '/a')).status, 200);
      assert.equal((await get(port, '/b')).status, 200);
    } finally {
      await both.stop();
    }
  });

  it('fails with one clear line when the port is taken, leaving nothing listening', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, resolve));
    const address = blocker.address();
    assert.ok(address !== null && typeof address === 'object');
    const free = await reservePort();
    try {
      await assert.rejects(
        startTelemetry({
          config: {
            exporters: [
              {
                name: 'first',
                type: 'prometheus',
                endpoints: [{ scheme: 'http', host: '127.0.0.1', path: '/metrics', port: free }],
              },
              {
                name: 'prometheus_exporter',
                type: 'prometheus',
                endpoints: [{ scheme: 'http', host: '127.0.0.1', path: '/metrics', port: address.port }],
              },
            ],
          },
          metrics: new Registry(),
          readiness: { config: CONFIG, binding: () => undefined },
          logger,
        }),
        (error: unknown) => {
          assert.ok(error instanceof Error);
          assert.equal(
            error.message,
            `telemetry prometheus_exporter: port ${address.port} is already in use`,
          );
          assert.equal(error.cause, undefined);
          return true;
        },
      );
      // The port that did open was closed again.
      await assert.rejects(fetch(`http://127.0.0.1:${free}/health`));
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });

  it('closes kept-alive scraper connections on stop', async () => {
    const port = await reservePort();
    const telemetry: Telemetry = await startTelemetry({
      config: prometheus(port),
      metrics: new Registry(),
      readiness: { config: CONFIG, binding: () => undefined },
      logger,
    });
    const socket = connect({ port, host: '127.0.0.1' });
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write('GET /health HTTP/1.1\r\nhost: x\r\nconnection: keep-alive\r\n\r\n');
    await new Promise<void>((resolve) => socket.once('data', () => resolve()));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const started = Date.now();
    await telemetry.stop();
    await closed;
    assert.ok(Date.now() - started < 1_000, 'stop did not wait for the idle connection');
  });
});

describe('kafka client connection state', () => {
  it('reports no connection and why when no broker answers', async () => {
    const client = new KafkaClient({ servers: ['127.0.0.1:1'], connectTimeoutMs: 1_000 });
    try {
      assert.equal(client.isConnected(), false);
      assert.equal(client.lastError, undefined);
      assert.equal(await client.probe(), false);
      assert.match(client.lastError ?? '', /ECONNREFUSED/);
      assert.equal(client.isConnected(), false);
    } finally {
      await client.close();
    }
  });

  it('says a kafka client binding that has not started is not ready', async () => {
    const config = CONFIG.bindings.get('kafka_client');
    assert.ok(config !== undefined);
    const binding = new KafkaClientBinding({
      config,
      logger,
      metrics: new Registry(),
      stateDir: '/nonexistent',
      lookup: () => {
        throw new Error('no exits');
      },
    });
    assert.equal(await binding.connectionProblem(), 'not started');
  });
});
