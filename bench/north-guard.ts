// What a jwt guard costs on the north side: `GET` latency and SSE fan-out through the same
// bindings with and without `authorization` and a guarded route, in the same run, alternating.
// The cache behind them is a fake topic in this process (test/support/fake-cache.ts), so what is
// measured is the gateway's own work, where the guard's cost is; the load runs in a forked child.
//
//   node bench/north-guard.ts [--seconds 5] [--connections 16] [--streams 500] [--events 200] [--rounds 2]

import { fork } from 'node:child_process';
import { Agent, request } from 'node:http';
import { parseArgs } from 'node:util';
import { closeFakeTopics, FakeTopic } from '../test/support/fake-cache.ts';
import { startGuardedGateway, type GuardedGateway } from '../test/support/guarded-gateway.ts';
import { AUDIENCE, ISSUER, signToken, testKey, type TestKey } from '../test/support/jwt.ts';
import { EventStreamParser } from '../test/support/event-stream.ts';
import { fmt, percentile, printEnvironment } from './lib/common.ts';

interface LoadOrder {
  readonly kind: 'get' | 'sse';
  readonly port: number;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly seconds: number;
  readonly connections: number;
  readonly streams: number;
  readonly events: number;
}

interface GetResult {
  readonly requests: number;
  readonly p50: number;
  readonly p99: number;
  readonly failed: number;
}

interface SseResult {
  readonly opened: number;
  /** Milliseconds from the first event's write until every stream had every event. */
  readonly allDeliveredMs: number;
}

// ---- the load, in the child process --------------------------------------------------------

async function getLoad(order: LoadOrder): Promise<GetResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: order.connections });
  const latencies: number[] = [];
  let failed = 0;
  const end = performance.now() + order.seconds * 1000;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const started = performance.now();
      const req = request(
        { host: '127.0.0.1', port: order.port, path: order.path, headers: order.headers, agent },
        (res) => {
          res.resume();
          res.on('end', () => {
            if (res.statusCode === 200) latencies.push(performance.now() - started);
            else failed++;
            resolve();
          });
        },
      );
      req.on('error', () => {
        failed++;
        resolve();
      });
      req.end();
    });
  await Promise.all(
    Array.from({ length: order.connections }, async () => {
      while (performance.now() < end) await one();
    }),
  );
  agent.destroy();
  const sorted = Float64Array.from(latencies).sort();
  return { requests: latencies.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), failed };
}

async function sseLoad(order: LoadOrder, announce: (message: unknown) => void): Promise<SseResult> {
  const counts: number[] = [];
  const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
  let opened = 0;
  let firstAt = 0;
  let allAt = 0;
  let complete = 0;
  await Promise.all(
    Array.from(
      { length: order.streams },
      (_, i) =>
        new Promise<void>((resolve, reject) => {
          counts[i] = 0;
          const req = request(
            {
              host: '127.0.0.1',
              port: order.port,
              path: order.path,
              headers: { ...order.headers, accept: 'text/event-stream' },
              agent,
            },
            (res) => {
              if (res.statusCode !== 200) reject(new Error(`stream answered ${res.statusCode}`));
              opened++;
              const parser = new EventStreamParser();
              res.setEncoding('utf8');
              res.on('data', (chunk: string) => {
                const got = parser.push(chunk).length;
                if (got === 0) return;
                if (firstAt === 0) firstAt = performance.now();
                counts[i] = (counts[i] ?? 0) + got;
                if (counts[i] === order.events) {
                  complete++;
                  if (complete === order.streams) allAt = performance.now();
                  req.destroy();
                }
              });
              resolve();
            },
          );
          req.on('error', () => undefined);
          req.end();
        }),
    ),
  );
  announce({ ready: true });
  const deadline = performance.now() + 60_000;
  while (allAt === 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  return { opened, allDeliveredMs: allAt === 0 ? Number.NaN : allAt - firstAt };
}

if (process.argv[2] === '--load') {
  process.on('message', (order: LoadOrder) => {
    const send = (message: unknown): void => void process.send?.(message);
    const run = order.kind === 'get' ? getLoad(order) : sseLoad(order, send);
    void run.then((result) => {
      send({ result });
      process.exit(0);
    });
  });
} else {
  await main();
}

function load<T>(order: LoadOrder, onReady?: () => void): Promise<T> {
  const child = fork(new URL(import.meta.url), ['--load'], { stdio: 'inherit' });
  return new Promise((resolve, reject) => {
    child.on('message', (message: { ready?: boolean; result?: T }) => {
      if (message.ready === true) onReady?.();
      if (message.result !== undefined) resolve(message.result);
    });
    child.on('error', reject);
    child.send(order);
  });
}

// ---- the gateway, in this process ----------------------------------------------------------

function config(key: TestKey, guarded: boolean): (port: number) => string {
  const authorization = guarded
    ? `    options: { authorization: { jwt0: { credentials: { headers: { authorization: "Bearer {credentials}" }, query: { access_token: "{credentials}" } } } } }`
    : '    options: {}';
  const guard = guarded ? '        guarded: { jwt0: [ read ] }\n' : '';
  return (port) => `
guards:
  jwt0:
    type: jwt
    options: { issuer: ${ISSUER}, audience: ${AUDIENCE}, keys: [${JSON.stringify(key.jwk)}] }
bindings:
  tcp: { type: tcp, kind: server, options: { host: 127.0.0.1, port: ${port} }, exit: http }
  http:
    type: http
    kind: server
${authorization}
    routes:
      - when: [ { headers: { ":path": "/events*" } } ]
${guard}        exit: sse
      - when: [ { headers: { ":path": "/items*" } } ]
${guard}        exit: api
  sse: { type: sse, kind: server, exit: events }
  events:
    type: sse-kafka
    kind: proxy
    routes: [ { when: [ { path: /events } ], exit: cache, with: { topic: fanout } } ]
  api:
    type: http-kafka
    kind: proxy
    routes: [ { when: [ { method: GET, path: "/items/{id}" } ], exit: cache, with: { capability: fetch, topic: items, filters: [ { key: "\${params.id}" } ] } } ]
  cache: { type: kafka, kind: cache_client, exit: server }
  server: { type: kafka, kind: cache_server, exit: client }
  client: { type: kafka, kind: client }
`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '5' },
      connections: { type: 'string', default: '16' },
      streams: { type: 'string', default: '500' },
      events: { type: 'string', default: '200' },
      rounds: { type: 'string', default: '2' },
    },
  });
  const seconds = Number(values.seconds);
  const connections = Number(values.connections);
  const streams = Number(values.streams);
  const events = Number(values.events);
  const rounds = Number(values.rounds);
  printEnvironment(
    `node bench/north-guard.ts --seconds ${seconds} --connections ${connections} --streams ${streams} --events ${events} --rounds ${rounds}`,
  );
  const key = await testKey();
  const token = await signToken(key, { scope: 'read' });
  const rows: string[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const guarded of [false, true]) {
      const items = new FakeTopic('items');
      for (let i = 0; i < 1000; i++) items.put(0, `id${i}`, JSON.stringify({ id: i, name: `item ${i}` }));
      const fanout = new FakeTopic('fanout');
      const gateway: GuardedGateway = await startGuardedGateway(config(key, guarded), [items, fanout], {
        keepLogs: false,
      });
      const headers: Record<string, string> = guarded ? { authorization: `Bearer ${token}` } : {};
      const base = { port: gateway.port, headers, seconds, connections, streams, events };
      // CPU time of this process (the gateway; the load is in a child): unlike latency, it does
      // not move with what else the machine runs.
      let cpu = process.cpuUsage();
      const get = await load<GetResult>({ ...base, kind: 'get', path: '/items/id42' });
      const getCpu = process.cpuUsage(cpu);
      cpu = process.cpuUsage();
      const sse = await load<SseResult>({ ...base, kind: 'sse', path: '/events' }, () => {
        for (let i = 0; i < events; i++) fanout.put(0, `k${i}`, `{"n":${i}}`);
      });
      const sseCpu = process.cpuUsage(cpu);
      const micros = (usage: NodeJS.CpuUsage): number => usage.user + usage.system;
      await gateway.stop();
      rows.push(
        `| ${round} | ${guarded ? 'jwt guard, guarded routes' : 'no guard'} | ${fmt(get.requests / seconds)} | ${fmt(get.p50, 2)} | ${fmt(get.p99, 2)} | ${get.failed} | ${fmt(micros(getCpu) / get.requests, 1)} | ${sse.opened} | ${fmt(sse.allDeliveredMs)} | ${fmt((streams * events) / (sse.allDeliveredMs / 1000))} | ${fmt((micros(sseCpu) * 1000) / (streams * events))} |`,
      );
    }
  }
  await closeFakeTopics();
  process.stdout.write(
    [
      '',
      '| round | gateway | GET/s | GET p50 ms | GET p99 ms | GET not 200 | gateway CPU µs per GET | streams | all events delivered, ms | events/s | gateway CPU ns per event (streams opened included) |',
      '| ----: | :------ | ----: | ---------: | ---------: | ----------: | ---------------------: | ------: | -----------------------: | -------: | -------------------------------------------------: |',
      ...rows,
      '',
    ].join('\n'),
  );
}
