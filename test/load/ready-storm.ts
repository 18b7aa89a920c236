// What kgate's telemetry port gives away, and to whom, and how many failed broker logins a storm
// of `/ready` requests causes after the SASL password kgate holds was rotated on the broker.
//
//   node test/load/ready-storm.ts                  # the default telemetry bind
//   node test/load/ready-storm.ts --host 0.0.0.0   # telemetry on every interface
//
// Starts one embedded broker on loopback and `kgate start` from the sources; stops both by itself
// (at the latest after 4 minutes). Failed logins are counted in the broker's own log.

import { pbkdf2Sync, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { alterUserScramCredentialsV0, Connection } from '@platformatic/kafka';
import { startKafka, type KafkaCluster } from '../../src/embedded/kafka/index.ts';
import { reservePort } from '../support/ports.ts';
import { KgateProcess, waitFor, withDeadline } from './lib/kgate-process.ts';

const STORM = 200;
const SUSTAINED_MS = 30_000;
const { values: args } = parseArgs({ options: { host: { type: 'string' } } });

function config(port: number, bootstrap: string, username: string, password: string): string {
  const host = args.host === undefined ? '' : `host: ${args.host}, `;
  return [
    'name: ready-storm',
    'telemetry:',
    '  exporters:',
    '    prometheus_exporter:',
    '      type: prometheus',
    '      options:',
    `        endpoints: [ { scheme: http, ${host}port: ${port}, path: /metrics } ]`,
    'bindings:',
    '  south:',
    '    type: kafka',
    '    kind: client',
    '    options:',
    `      servers: ["${bootstrap}"]`,
    `      sasl: { mechanism: scram-sha-256, username: ${username}, password: "${password}" }`,
    '',
  ].join('\n');
}

/** This machine's first address that is not loopback, if it has one. */
function outsideAddress(): string | undefined {
  for (const addresses of Object.values(networkInterfaces()))
    for (const address of addresses ?? [])
      if (!address.internal && address.family === 'IPv4') return address.address;
  return undefined;
}

async function get(host: string, port: number, path: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://${host}:${port}${path}`, { signal: AbortSignal.timeout(10_000) });
  return { status: response.status, body: await response.text() };
}

/** Whether a TCP connection to host:port is accepted, else the error code. */
function reach(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, host);
    socket.once('connect', () => {
      socket.destroy();
      resolve('accepted');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

/** Sets a SCRAM-SHA-256 password on the broker, as an operator's rotation would. */
async function rotatePassword(bootstrap: string, username: string, password: string): Promise<void> {
  const [host, port] = bootstrap.split(',')[0]?.split(':') ?? [];
  const connection = new Connection('kgate-load-rotation');
  await connection.connect(host ?? '127.0.0.1', Number(port));
  try {
    const salt = randomBytes(16);
    const iterations = 4096;
    const response = await alterUserScramCredentialsV0.api.async(
      connection,
      [],
      [
        {
          name: username,
          mechanism: 1,
          iterations,
          salt,
          saltedPassword: pbkdf2Sync(password, salt, iterations, 32, 'sha256'),
        },
      ],
    );
    const failed = response.results.find((r) => r.errorCode !== 0);
    if (failed !== undefined)
      throw new Error(`password rotation failed: ${failed.errorMessage ?? failed.errorCode}`);
  } finally {
    await connection.close();
  }
}

async function failedLogins(kafka: KafkaCluster): Promise<number> {
  const id = kafka.brokerIds[0] ?? 0;
  const log = await readFile(kafka.logFile(id), 'utf8').catch(() => '');
  return log.split('\n').filter((line) => line.includes('Failed authentication with')).length;
}

function redacted(body: string, secrets: readonly string[]): string {
  const found = secrets.filter((s) => body.includes(s));
  return found.length === 0 ? 'nothing' : found.join(', ');
}

async function main(): Promise<void> {
  console.log(
    `command: node test/load/ready-storm.ts${args.host === undefined ? '' : ` --host ${args.host}`}`,
  );
  console.log(`node ${process.version}, ${new Date().toISOString()}`);
  let kafka: KafkaCluster | undefined;
  let kgate: KgateProcess | undefined;
  const dir = await mkdtemp(join(tmpdir(), 'kgate-ready-storm-'));
  await withDeadline(
    240_000,
    async () => {
      kafka = await startKafka();
      const cluster = kafka;
      const { username, password } = cluster.users.scram256;
      const saslAddress = cluster.saslBootstrap.split(',')[0] ?? '';
      const port = await reservePort();
      const file = join(dir, 'kgate.yaml');
      await writeFile(file, config(port, cluster.saslBootstrap, username, password));
      const process_ = new KgateProcess(['start', '-c', file, '--cache-dir', join(dir, 'cache')]);
      kgate = process_;
      await waitFor(
        'kgate is ready',
        async () => (await get('127.0.0.1', port, '/ready')).status === 200,
        () => process_.running,
      );

      const outside = outsideAddress();
      console.log(
        `\ntelemetry port ${port}: from 127.0.0.1 ${await reach('127.0.0.1', port)}; ` +
          (outside === undefined
            ? 'no non-loopback address on this machine'
            : `from ${outside} ${await reach(outside, port)}`),
      );

      await rotatePassword(cluster.bootstrap, username, `${password}-rotated`);
      // A rotation leaves authenticated connections open; a broker restart closes kgate's.
      const id = cluster.brokerIds[0] ?? 0;
      await cluster.stopBroker(id);
      await cluster.startBroker(id);
      await waitFor(
        '/ready reports the failed login',
        async () => (await get('127.0.0.1', port, '/ready')).status === 503,
        () => process_.running,
      );

      const secrets = [username, saslAddress];
      for (const [who, host] of [
        ['127.0.0.1', '127.0.0.1'],
        [outside ?? '', outside ?? ''],
      ] as const) {
        if (host === '') continue;
        for (const path of ['/ready', '/status']) {
          const answer = await get(host, port, path).catch((error: unknown) => ({
            status: 0,
            body: String(error),
          }));
          const said =
            answer.status === 0 ? 'refused' : `${answer.status}, names ${redacted(answer.body, secrets)}`;
          console.log(`${path} asked from ${who}: ${said}: ${answer.body.trim().slice(0, 300)}`);
        }
      }

      // Give the restarted broker's log a moment to settle, then count what the storm adds.
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      const rows: string[] = [];
      for (const mode of ['sequential', 'concurrent'] as const) {
        const before = await failedLogins(cluster);
        const started = Date.now();
        if (mode === 'sequential') for (let i = 0; i < STORM; i++) await get('127.0.0.1', port, '/ready');
        else await Promise.all(Array.from({ length: STORM }, () => get('127.0.0.1', port, '/ready')));
        const elapsed = Date.now() - started;
        // The broker logs a failed login once its answer went out; give the last ones time to land.
        await new Promise((resolve) => setTimeout(resolve, 1_500));
        const added = (await failedLogins(cluster)) - before;
        rows.push(`| ${STORM} ${mode} | ${elapsed} | ${added} |`);
        await new Promise((resolve) => setTimeout(resolve, 1_500));
      }
      // A client looping on /ready for SUSTAINED_MS, as a misconfigured probe or a scanner would.
      const before = await failedLogins(cluster);
      const started = Date.now();
      let requests = 0;
      while (Date.now() - started < SUSTAINED_MS) {
        await get('127.0.0.1', port, '/ready');
        requests++;
      }
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      const added = (await failedLogins(cluster)) - before;
      rows.push(
        `| ${requests} back to back for ${SUSTAINED_MS / 1000} s | ${Date.now() - started - 1_500} | ${added} |`,
      );
      console.log('\n| /ready requests | took ms | failed logins on the broker |');
      console.log('| :-- | --: | --: |');
      for (const row of rows) console.log(row);
      const metrics = (await get('127.0.0.1', port, '/metrics')).body;
      const checks = metrics
        .split('\n')
        .filter((line) => line.startsWith('kgate_telemetry_connection_checks'));
      console.log(
        `\nkgate's own count: ${checks.length === 0 ? '(no such metric)' : `\n${checks.join('\n')}`}`,
      );
    },
    async () => {
      await kgate?.stop();
      await kafka?.stop();
      await rm(dir, { recursive: true, force: true });
    },
  );
}

await main();
