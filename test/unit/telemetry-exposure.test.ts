import { strict as assert } from 'node:assert';
import { connect, createServer, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { KafkaClient } from '../../src/bindings/kafka/client/index.ts';
import { parseConfig, type TelemetryConfig } from '../../src/config/index.ts';
import type { Binding } from '../../src/engine/binding.ts';
import { ConnectionProbes, startTelemetry, type Telemetry } from '../../src/telemetry/index.ts';
import { reservePort } from '../support/ports.ts';

const logger = pino({ level: 'silent' });
const SASL_FAILURE = 'SASL authentication failed for user bob with SCRAM-SHA-256';

const CONFIG = parseConfig(
  [
    'name: t',
    'bindings:',
    '  cache: { type: kafka, kind: cache_server, exit: south }',
    '  south: { type: kafka, kind: client, options: { servers: ["127.0.0.1:1"] } }',
  ].join('\n'),
  'kgate.yaml',
  {},
);

/** The telemetry section as a file without `host` gives it. */
function telemetryAt(port: number, host?: string): TelemetryConfig {
  const config = parseConfig(
    [
      'telemetry:',
      '  exporters:',
      '    prometheus_exporter:',
      '      type: prometheus',
      '      options:',
      `        endpoints: [ { ${host === undefined ? '' : `host: ${host}, `}port: ${port} } ]`,
      'bindings:',
      '  tcp: { type: tcp, kind: client }',
    ].join('\n'),
    'kgate.yaml',
    {},
  );
  assert.ok(config.telemetry !== undefined);
  return config.telemetry;
}

/** This machine's first IPv4 address that is not loopback, if it has one. */
function outsideAddress(): string | undefined {
  for (const addresses of Object.values(networkInterfaces()))
    for (const address of addresses ?? [])
      if (!address.internal && address.family === 'IPv4') return address.address;
  return undefined;
}

/** A started binding whose broker check is counted. */
class CountingKafka implements Binding {
  readonly name = 'south';
  checks = 0;
  problem: string | undefined = SASL_FAILURE;
  #probe: () => Promise<string | undefined>;
  constructor(probe?: () => Promise<string | undefined>) {
    this.#probe = probe ?? (() => Promise.resolve(this.problem));
  }
  start(): Promise<void> {
    return Promise.resolve();
  }
  stop(): Promise<void> {
    return Promise.resolve();
  }
  connectionProblem(): Promise<string | undefined> {
    this.checks++;
    return this.#probe();
  }
}

/** A cache_server stand-in whose ingest paused, with a reason naming its store. */
const pausedCache: Binding & { status(): never[]; ingestProblem(): string } = {
  name: 'cache',
  start: () => Promise.resolve(),
  stop: () => Promise.resolve(),
  status: () => [],
  ingestProblem: () =>
    'cache disk full, ingest paused since 2026-01-01T00:00:00.000Z: ENOSPC /srv/kgate/cache',
};

function connectError(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect(port, host);
    socket.once('connect', () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code));
  });
}

async function get(host: string, port: number, path: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://${host}:${port}${path}`);
  return { status: response.status, body: await response.text() };
}

describe('telemetry exposure', () => {
  it('listens on loopback unless told otherwise: the machine’s other addresses are refused', async () => {
    const port = await reservePort();
    const config = telemetryAt(port);
    assert.equal(config.exporters[0]?.endpoints[0]?.host, '127.0.0.1');
    const telemetry = await startTelemetry({
      config,
      metrics: new Registry(),
      readiness: { config: CONFIG, binding: () => undefined },
      logger,
    });
    try {
      assert.equal((await get('127.0.0.1', port, '/health')).status, 200);
      const outside = outsideAddress();
      // Without another address there is nothing more to try; the bound host was asserted above.
      if (outside !== undefined) assert.equal(await connectError(outside, port), 'ECONNREFUSED');
    } finally {
      await telemetry.stop();
    }
  });

  it('gives the details of a problem to loopback clients only', async (t) => {
    const outside = outsideAddress();
    if (outside === undefined) {
      t.skip('this machine has no address besides loopback');
      return;
    }
    const port = await reservePort();
    const kafka = new CountingKafka();
    const started = new Map<string, Binding>([
      ['south', kafka],
      ['cache', pausedCache],
    ]);
    const telemetry = await startTelemetry({
      config: telemetryAt(port, '0.0.0.0'),
      metrics: new Registry(),
      readiness: { config: CONFIG, binding: (name) => started.get(name) },
      logger,
    });
    try {
      const local = await get('127.0.0.1', port, '/ready');
      assert.equal(local.status, 503);
      assert.deepEqual(JSON.parse(local.body), {
        ready: false,
        problems: [{ binding: 'south', reason: `no live Kafka broker connection: ${SASL_FAILURE}` }],
      });
      const remote = await get(outside, port, '/ready');
      assert.equal(remote.status, 503);
      assert.deepEqual(JSON.parse(remote.body), {
        ready: false,
        problems: [{ binding: 'south', reason: 'no live Kafka broker connection' }],
      });
      const localStatus = await get('127.0.0.1', port, '/status');
      assert.match(localStatus.body, /user bob/);
      assert.match(localStatus.body, /ENOSPC \/srv\/kgate\/cache/);
      const remoteStatus = JSON.parse((await get(outside, port, '/status')).body) as unknown;
      assert.deepEqual(remoteStatus, {
        stopping: false,
        bindings: [
          { name: 'cache', type: 'kafka', kind: 'cache_server', started: true },
          {
            name: 'south',
            type: 'kafka',
            kind: 'client',
            started: true,
            problem: 'no live Kafka broker connection',
          },
        ],
        caches: [{ binding: 'cache', ingestProblem: 'ingest paused', partitions: [] }],
      });
    } finally {
      await telemetry.stop();
    }
  });

  it('checks the broker once for a storm of /ready and /status requests', async () => {
    const port = await reservePort();
    const kafka = new CountingKafka();
    const telemetry: Telemetry = await startTelemetry({
      config: telemetryAt(port),
      metrics: new Registry(),
      readiness: { config: CONFIG, binding: (name) => (name === 'south' ? kafka : undefined) },
      logger,
      // Longer than any loaded machine needs for the requests below (the default is 5 s).
      probeReuseMs: 60_000,
    });
    try {
      for (let i = 0; i < 100; i++) assert.equal((await get('127.0.0.1', port, '/ready')).status, 503);
      const storm = await Promise.all(
        Array.from({ length: 100 }, (_, i) => get('127.0.0.1', port, i % 2 === 0 ? '/ready' : '/status')),
      );
      assert.ok(storm.every((answer) => answer.body.includes(SASL_FAILURE)));
      assert.equal(kafka.checks, 1);
      const metrics = (await get('127.0.0.1', port, '/metrics')).body;
      assert.match(
        metrics,
        /^kgate_telemetry_connection_checks_total\{binding="south",outcome="problem"\} 1$/m,
      );
      assert.match(metrics, /^kgate_telemetry_connection_checks_reused_total\{binding="south"\} 199$/m);
    } finally {
      await telemetry.stop();
    }
  });

  it('opens one broker connection for 200 /ready requests while no broker lets it in', async () => {
    // A "broker" that takes each connection and closes it, as one refusing kgate's login would.
    const sockets = new Set<Socket>();
    let connections = 0;
    const broker = createServer((socket) => {
      connections++;
      sockets.add(socket);
      socket.destroy();
    });
    await new Promise<void>((resolve) => broker.listen(0, '127.0.0.1', resolve));
    const address = broker.address();
    assert.ok(address !== null && typeof address === 'object');
    const client = new KafkaClient({ servers: [`127.0.0.1:${address.port}`], connectTimeoutMs: 1_000 });
    const kafka = new CountingKafka(async () =>
      (await client.probe()) ? undefined : (client.lastError ?? 'no broker connection'),
    );
    const port = await reservePort();
    const telemetry = await startTelemetry({
      config: telemetryAt(port),
      metrics: new Registry(),
      readiness: { config: CONFIG, binding: (name) => (name === 'south' ? kafka : undefined) },
      logger,
      // Longer than any loaded machine needs for the requests below (the default is 5 s).
      probeReuseMs: 60_000,
    });
    try {
      const answers = await Promise.all(Array.from({ length: 100 }, () => get('127.0.0.1', port, '/ready')));
      for (let i = 0; i < 100; i++) answers.push(await get('127.0.0.1', port, '/ready'));
      assert.ok(answers.every((answer) => answer.status === 503));
      assert.equal(connections, 1);
    } finally {
      await telemetry.stop();
      await client.close();
      await new Promise<void>((resolve) => broker.close(() => resolve()));
    }
  });
});

describe('connection probes', () => {
  function probed(problem: () => Promise<string | undefined>): Binding & {
    connectionProblem(): Promise<string | undefined>;
    calls: number;
  } {
    const binding = {
      name: 'south',
      calls: 0,
      start: () => Promise.resolve(),
      stop: () => Promise.resolve(),
      connectionProblem: () => {
        binding.calls++;
        return problem();
      },
    };
    return binding;
  }

  it('shares a probe in flight, reuses a problem for its window and a healthy answer never', async () => {
    let clock = 0;
    const probes = new ConnectionProbes({ reuseMs: 5_000, now: () => clock });
    let release: (problem: string | undefined) => void = () => undefined;
    let answer: string | undefined = 'refused';
    const binding = probed(
      () =>
        new Promise((resolve) => {
          release = resolve;
        }),
    );
    const waiting = [probes.connectionProblem(binding), probes.connectionProblem(binding)];
    assert.equal(binding.calls, 1);
    release(answer);
    assert.deepEqual(await Promise.all(waiting), ['refused', 'refused']);
    clock = 4_999;
    assert.equal(await probes.connectionProblem(binding), 'refused');
    assert.equal(binding.calls, 1);
    clock = 5_000;
    answer = undefined;
    const fresh = probes.connectionProblem(binding);
    assert.equal(binding.calls, 2);
    release(answer);
    assert.equal(await fresh, undefined);
    const again = probes.connectionProblem(binding);
    assert.equal(binding.calls, 3, 'a healthy answer is not reused');
    release(undefined);
    assert.equal(await again, undefined);
    assert.equal(probes.started, 3);
  });

  it('probes a binding restarted by a reload afresh', async () => {
    const probes = new ConnectionProbes({ reuseMs: 60_000 });
    const before = probed(() => Promise.resolve('refused'));
    const after = probed(() => Promise.resolve(undefined));
    assert.equal(await probes.connectionProblem(before), 'refused');
    assert.equal(await probes.connectionProblem(after), undefined);
  });
});
