// HTTP north side through tcp -> http -> http-kafka -> cache_client -> cache_server -> client:
//   node bench/north-http-get.ts [--keys 1000000] [--fill-seconds 60] [--rate 2000] [--connections 50]
//        [--seconds 10] [--warmup-seconds 15] [--put-clients 50] [--put-seconds 10] [--size 100] [--puts-only] [--workers 0]
//        [--pin] [--produce-method PUT|POST] [--zilla-metrics]
// 1. Fills a compacted 8-partition topic with up to `keys` distinct keys, stopping after
//    `fill-seconds` of producing, and waits until kgate's cache answers for the last key.
// 2. `GET /items/{id}` of random filled keys, open loop at `rate` req/s over `connections`
//    keep-alive connections; latency counts from each request's scheduled time, so queueing behind
//    a slow gateway is included rather than hidden. The first `warmup-seconds` of that load are
//    reported apart (stderr) and not counted. Then the same load against the peer: a bare node:http
//    server in kgate's process answering from memory, the floor under any Node gateway here.
// 3. `PUT /puts/{id}` (100 B bodies; `POST` with --produce-method POST, the same route and key)
//    from `put-clients` concurrent closed-loop clients for
//    `put-seconds`, against the same number of concurrent single-record send() loops of a direct
//    @platformatic/kafka Producer (acks -1, kgate's default) on the same broker.
// kgate runs in this process; every client runs in a forked load process. With --pin (Linux,
// taskset, 2 or more CPUs) kgate gets CPU 0 to itself and the broker and the load process share
// CPU 1, the way a deployment keeps a gateway off its brokers' and clients' cores; without it
// all three compete for every CPU, and a latency tail may be another process's time slice.
// --zilla-metrics has the tcp and http servers collect every Zilla metric kgate offers.

import { Producer } from '@platformatic/kafka';
import { Agent, createServer, request } from 'node:http';
import type { Counter } from 'prom-client';
import { constants, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { fmt, loadAverage, PARTITIONS, printEnvironment, printTable, withBroker } from './lib/common.ts';
import {
  LoadProcess,
  MiB,
  ms,
  now,
  parentChannel,
  pinProcess,
  sampleRss,
  Samples,
  startGateway,
  summarize,
  type Gateway,
  type Latency,
} from './north-common.ts';

const { values: args } = parseArgs({
  options: {
    keys: { type: 'string', default: '1000000' },
    'fill-seconds': { type: 'string', default: '60' },
    rate: { type: 'string', default: '2000' },
    connections: { type: 'string', default: '50' },
    seconds: { type: 'string', default: '10' },
    'warmup-seconds': { type: 'string', default: '15' },
    'put-clients': { type: 'string', default: '50' },
    'put-seconds': { type: 'string', default: '10' },
    size: { type: 'string', default: '100' },
    'puts-only': { type: 'boolean', default: false },
    workers: { type: 'string', default: '0' },
    pin: { type: 'boolean', default: false },
    'produce-method': { type: 'string', default: 'PUT' },
    'zilla-metrics': { type: 'boolean', default: false },
    role: { type: 'string', default: 'gateway' },
    port: { type: 'string', default: '0' },
    bootstrap: { type: 'string', default: '' },
    topic: { type: 'string', default: '' },
    'put-topic': { type: 'string', default: '' },
  },
});
const maxKeys = Number(args.keys);
const fillSeconds = Number(args['fill-seconds']);
const rate = Number(args.rate);
const connections = Number(args.connections);
const seconds = Number(args.seconds);
const warmupSeconds = Number(args['warmup-seconds']);
const putClients = Number(args['put-clients']);
const putSeconds = Number(args['put-seconds']);
const size = Math.max(32, Number(args.size));
const putsOnly = args['puts-only'];
const workers = Number(args.workers);
const pin = args.pin;
const produceMethod = parseProduceMethod(args['produce-method']);
// Every Zilla metric kgate collects, selected on the tcp and http servers, to measure their cost.
const zillaMetrics = args['zilla-metrics'];
const ZILLA_TELEMETRY = [
  'telemetry:',
  '  metrics: [http.request.size, http.response.size, http.active.requests, http.duration,',
  '    stream.active.received, stream.active.sent, stream.opens.received, stream.opens.sent,',
  '    stream.data.received, stream.data.sent, stream.errors.received, stream.errors.sent,',
  '    stream.closes.received, stream.closes.sent]',
];
const ZILLA_SELECTION = ', telemetry: { metrics: [http.*, stream.*] }';

function parseProduceMethod(text: string): 'PUT' | 'POST' {
  const method = text.toUpperCase();
  if (method !== 'PUT' && method !== 'POST')
    throw new Error(`--produce-method takes PUT or POST, not ${text}`);
  return method;
}

interface Phase {
  readonly name: string;
  readonly requests: number;
  readonly ok: number;
  readonly elapsedMs: number;
  readonly latency: Latency;
  readonly note: string;
}

type Down =
  | { type: 'phase'; phase: 'fill' | 'get' | 'put-kgate' | 'put-direct' }
  | { type: 'phase'; phase: 'get-peer'; port: number };
type Up = { type: 'filled'; keys: number; fillMs: number; warmMs: number } | { type: 'done'; phase: Phase };

function body(id: string): Buffer {
  return Buffer.from(JSON.stringify({ id, v: 'x'.repeat(size) }).slice(0, size - 2) + '"}');
}

function sleep(msToWait: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, msToWait));
}

const knownSockets = new WeakSet<object>();
let socketsBySecond: number[] = [];
let phaseStarted = 0;

function call(
  agent: Agent,
  method: 'GET' | 'PUT' | 'POST',
  path: string,
  payload?: Buffer,
  port = Number(args.port),
): Promise<{ status: number; text: string }> {
  return new Promise((resolve) => {
    const headers: Record<string, string> =
      payload === undefined
        ? {}
        : { 'content-type': 'application/json', 'content-length': String(payload.length) };
    const req = request({ agent, host: '127.0.0.1', port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
      res.on('error', () => resolve({ status: 0, text: '' }));
    });
    req.on('error', () => resolve({ status: 0, text: '' }));
    req.on('socket', (socket) => {
      if (knownSockets.has(socket)) return;
      knownSockets.add(socket);
      const second = Math.floor((now() - phaseStarted) / 1000);
      socketsBySecond[second] = (socketsBySecond[second] ?? 0) + 1;
    });
    req.end(payload);
  });
}

async function fill(): Promise<{ keys: number; fillMs: number }> {
  const producer = new Producer({
    clientId: 'bench-north-fill',
    bootstrapBrokers: args.bootstrap.split(','),
    acks: 1,
  });
  const batch = 1000;
  const started = now();
  const stopAt = started + fillSeconds * 1000;
  let next = 0;
  try {
    // Several batches in flight keep the broker busy while the next batch is encoded.
    const worker = async (): Promise<void> => {
      while (next < maxKeys && now() < stopAt) {
        const from = next;
        const to = Math.min(maxKeys, from + batch);
        next = to;
        const messages = [];
        for (let i = from; i < to; i++)
          messages.push({ topic: args.topic, key: Buffer.from(String(i)), value: body(String(i)) });
        await producer.send({ messages });
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
  } finally {
    await producer.close();
  }
  return { keys: next, fillMs: now() - started };
}

async function getPhase(
  agent: Agent,
  keys: number,
  runSeconds: number,
  port: number,
  server: string,
): Promise<Phase> {
  const latencies = new Samples();
  const statuses = new Map<number, number>();
  let issued = 0;
  let outstanding = 0;
  let dropped = 0;
  const started = now();
  phaseStarted = started;
  socketsBySecond = [];
  const total = Math.round(rate * runSeconds);
  let lastDone = started;
  // Whether the tail is spread over the run or comes in bursts (warm-up, a stall) shows here.
  const slowBySecond: number[] = [];
  const one = async (scheduled: number): Promise<void> => {
    outstanding++;
    const id = Math.floor(Math.random() * keys);
    const { status } = await call(agent, 'GET', `/items/${id}`, undefined, port);
    lastDone = now();
    latencies.push(lastDone - scheduled);
    if (lastDone - scheduled > 5) {
      const second = Math.floor((scheduled - started) / 1000);
      slowBySecond[second] = (slowBySecond[second] ?? 0) + 1;
    }
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
    outstanding--;
  };
  const pending: Promise<void>[] = [];
  while (issued < total) {
    const due = Math.min(total, Math.floor(((now() - started) * rate) / 1000));
    for (; issued < due; issued++) {
      // A gateway far behind would otherwise grow the queue without bound.
      if (outstanding > 20_000) dropped++;
      else pending.push(one(started + (issued * 1000) / rate));
    }
    await sleep(1);
  }
  // A gateway far slower than the target rate would keep this phase going for hours: requests
  // still unanswered 30 s after the last was due are cut off and reported, not waited for.
  let timer: NodeJS.Timeout | undefined;
  const settled = await Promise.race([
    Promise.all(pending).then(() => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 30_000))),
  ]);
  clearTimeout(timer);
  const unanswered = settled ? 0 : outstanding;
  console.error(
    `connections opened, by second of the run: ${Array.from(socketsBySecond, (n) => n ?? 0).join(' ')}`,
  );
  console.error(
    `GET answered after more than 5 ms, by second of the run: ${Array.from(slowBySecond, (n) => n ?? 0).join(' ')}`,
  );
  if (!settled) {
    agent.destroy();
    // Lets the gateway see the closed connections and drop their work before the next phase.
    await sleep(5_000);
  }
  return {
    name: `${server} GET /items/{id}, open loop ${fmt(rate)} req/s, ${connections} connections`,
    requests: issued - dropped,
    ok: statuses.get(200) ?? 0,
    elapsedMs: lastDone - started,
    latency: summarize(latencies.view()),
    note:
      [...statuses].map(([s, n]) => `${s}: ${fmt(n)}`).join(', ') +
      (unanswered > 0 ? `, ${fmt(unanswered)} unanswered after 30 s (not in the percentiles)` : '') +
      (dropped > 0 ? `, ${fmt(dropped)} not sent (over 20,000 outstanding)` : ''),
  };
}

async function putKgate(agent: Agent): Promise<Phase> {
  const latencies = new Samples();
  let ok = 0;
  let failed = 0;
  let lastError = '';
  const started = now();
  const stopAt = started + putSeconds * 1000;
  const client = async (c: number): Promise<void> => {
    for (let i = 0; now() < stopAt; i++) {
      const id = `${c}-${i}`;
      const t0 = now();
      const { status, text } = await call(agent, produceMethod, `/puts/${id}`, body(id));
      latencies.push(now() - t0);
      if (status === 204) ok++;
      else {
        failed++;
        lastError = `${status} ${text.slice(0, 80)}`;
      }
    }
  };
  await Promise.all(Array.from({ length: putClients }, (_, c) => client(c)));
  return {
    name: `kgate ${produceMethod} /puts/{id}, ${putClients} clients`,
    requests: ok + failed,
    ok,
    elapsedMs: now() - started,
    latency: summarize(latencies.view()),
    note: failed > 0 ? `${fmt(failed)} failed, last: ${lastError}` : '',
  };
}

async function putDirect(): Promise<Phase> {
  const producer = new Producer({
    clientId: 'bench-north-direct',
    bootstrapBrokers: args.bootstrap.split(','),
    acks: -1,
  });
  const latencies = new Samples();
  let ok = 0;
  let failed = 0;
  const started = now();
  const stopAt = started + putSeconds * 1000;
  try {
    const client = async (c: number): Promise<void> => {
      for (let i = 0; now() < stopAt; i++) {
        const id = `${c}-${i}`;
        const t0 = now();
        try {
          await producer.send({
            messages: [{ topic: args['put-topic'], key: Buffer.from(id), value: body(id) }],
          });
          ok++;
        } catch {
          failed++;
        }
        latencies.push(now() - t0);
      }
    };
    await Promise.all(Array.from({ length: putClients }, (_, c) => client(c)));
  } finally {
    await producer.close();
  }
  return {
    name: `@platformatic/kafka send(), ${putClients} concurrent`,
    requests: ok + failed,
    ok,
    elapsedMs: now() - started,
    latency: summarize(latencies.view()),
    note: failed > 0 ? `${fmt(failed)} failed` : '',
  };
}

async function load(): Promise<void> {
  const channel = parentChannel<Down, Up>();
  const agent = new Agent({ keepAlive: true, maxSockets: connections, maxTotalSockets: connections });
  const putAgent = new Agent({ keepAlive: true, maxSockets: putClients, maxTotalSockets: putClients });
  let keys = 0;
  for (;;) {
    const message = await channel.next();
    if (message.phase === 'fill') {
      const filled = await fill();
      keys = filled.keys;
      // The cache answers a GET only once it has caught up with the topic's head (else 504), so
      // the first 200 for the last key means the whole fill is cached.
      const warmStarted = now();
      const last = String(keys - 1);
      for (;;) {
        const { status } = await call(agent, 'GET', `/items/${last}`);
        if (status === 200) break;
        if (now() - warmStarted > 300_000)
          throw new Error(`the cache did not warm up (last status ${status})`);
        await sleep(500);
      }
      channel.send({ type: 'filled', keys, fillMs: filled.fillMs, warmMs: now() - warmStarted });
    } else if (message.phase === 'get' || message.phase === 'get-peer') {
      const port = message.phase === 'get-peer' ? message.port : Number(args.port);
      const server = message.phase === 'get-peer' ? 'node:http floor' : 'kgate';
      // FIFO takes turns over every connection. The default LIFO keeps reusing the few
      // connections just freed, so the others idle past the server's keep-alive timeout, get
      // closed, and are reopened in bursts: that measures reconnects, not 50 open connections.
      const getAgent = new Agent({
        keepAlive: true,
        maxSockets: connections,
        maxTotalSockets: connections,
        scheduling: 'fifo',
      });
      if (warmupSeconds > 0) {
        // Same load on the same connections, reported apart: the first seconds of a fresh
        // process (JIT compilation, connections opening, GC sizing its heap) are not its steady state.
        // 15 s by default because V8 optimizes the request path's hundred-odd hot functions with
        // TurboFan only after some 10,000 requests; on 2 cores those compilations, on V8's
        // worker threads, took the CPU from both processes for a few hundred ms and made a
        // burst of slow answers about 5 s into the load.
        const warmup = await getPhase(getAgent, keys, warmupSeconds, port, server);
        console.error(
          `${server} GET warm-up, ${warmupSeconds} s not counted: p50 ${ms(warmup.latency.p50)} ms, ` +
            `p99 ${ms(warmup.latency.p99)} ms, max ${ms(warmup.latency.max)} ms; ${warmup.note}`,
        );
      }
      // The load process stalling shows as gateway latency, since latency counts from the
      // scheduled send time: its own stalls are printed beside the gateway's.
      const stalls = watchStalls();
      const phase = await getPhase(getAgent, keys, seconds, port, server);
      console.error(`load process during the ${server} GET phase: ${stalls.stop()}`);
      channel.send({ type: 'done', phase });
      getAgent.destroy();
    } else if (message.phase === 'put-kgate') channel.send({ type: 'done', phase: await putKgate(putAgent) });
    else channel.send({ type: 'done', phase: await putDirect() });
  }
}

async function gateway(): Promise<void> {
  const command =
    `node bench/north-http-get.ts --keys ${maxKeys} --fill-seconds ${fillSeconds} --rate ${rate} ` +
    `--connections ${connections} --seconds ${seconds} --warmup-seconds ${warmupSeconds} --put-clients ${putClients} --put-seconds ${putSeconds} --size ${size}` +
    (putsOnly ? ' --puts-only' : '') +
    (workers > 0 ? ` --workers ${workers}` : '') +
    (pin ? ' --pin' : '') +
    (produceMethod === 'PUT' ? '' : ` --produce-method ${produceMethod}`);
  printEnvironment(command);
  // The broker started below inherits this CPU; kgate moves to its own once it is up.
  if (pin) pinProcess(process.pid, '1');
  const report = await withBroker(15 * 60_000, async (cluster) => {
    if (pin) pinProcess(process.pid, '0');
    const topic = `north-items-${Date.now()}`;
    const putTopic = `north-puts-${Date.now()}`;
    await cluster.createTopic(topic, { partitions: PARTITIONS, configs: { 'cleanup.policy': 'compact' } });
    await cluster.createTopic(putTopic, { partitions: PARTITIONS });
    const gw = await startGateway(
      'north-http',
      [
        `  north_tcp: { type: tcp, kind: server, options: { host: 127.0.0.1, port: 0 }, exit: north_http${zillaMetrics ? ZILLA_SELECTION : ''} }`,
        `  north_http: { type: http, kind: server, exit: north_http_kafka${zillaMetrics ? ZILLA_SELECTION : ''} }`,
        '  north_http_kafka:',
        '    type: http-kafka',
        '    kind: proxy',
        '    routes:',
        '      - when: [{ method: GET, path: "/items/{id}" }]',
        '        exit: cache_client',
        `        with: { capability: fetch, topic: ${topic}, filters: [{ key: "\${params.id}" }] }`,
        '      - when: [{ method: PUT, path: "/puts/{id}" }, { method: POST, path: "/puts/{id}" }]',
        '        exit: cache_client',
        `        with: { capability: produce, topic: ${putTopic}, key: "\${params.id}" }`,
        '  cache_client: { type: kafka, kind: cache_client, exit: cache_server }',
        // --puts-only measures PUT alone: no fill, no GET phase, nothing cached up front.
        `  cache_server: { type: kafka, kind: cache_server, options: { bootstrap: [${putsOnly ? '' : topic}] }, exit: south }`,
        `  south: { type: kafka, kind: client, options: { servers: ["${cluster.bootstrap}"] } }`,
      ],
      { workers, ...(zillaMetrics ? { topLevel: ZILLA_TELEMETRY } : {}) },
    );
    const rss = sampleRss();
    const child = new LoadProcess<Up, Down>(import.meta.filename, [
      ...['--keys', String(maxKeys), '--fill-seconds', String(fillSeconds), '--rate', String(rate)],
      ...['--connections', String(connections), '--seconds', String(seconds), '--size', String(size)],
      ...['--warmup-seconds', String(warmupSeconds)],
      ...[
        '--put-clients',
        String(putClients),
        '--put-seconds',
        String(putSeconds),
        '--port',
        String(gw.port),
      ],
      ...['--bootstrap', cluster.bootstrap, '--topic', topic, '--put-topic', putTopic],
      ...['--produce-method', produceMethod],
    ]);
    if (pin && child.pid !== undefined) pinProcess(child.pid, '1');
    const phase = async (name: Down['phase'], port = 0): Promise<Phase> => {
      const stalls = watchStalls();
      child.send(name === 'get-peer' ? { type: 'phase', phase: name, port } : { type: 'phase', phase: name });
      const answer = await child.next();
      if (answer.type !== 'done') throw new Error('unexpected message from the load process');
      console.error(`done: ${answer.phase.name}; kgate ${stalls.stop()}`);
      return answer.phase;
    };
    try {
      let filled: { keys: number; fillMs: number; warmMs: number } = { keys: 0, fillMs: 0, warmMs: 0 };
      if (!putsOnly) {
        const stalls = watchStalls();
        child.send({ type: 'phase', phase: 'fill' });
        const answer = await child.next();
        if (answer.type !== 'filled') throw new Error('unexpected message from the load process');
        filled = answer;
        console.error(
          `filled ${filled.keys} keys in ${Math.round(filled.fillMs)} ms, cache warm ${Math.round(filled.warmMs)} ms later; ` +
            `kgate ${stalls.stop()}`,
        );
      }
      const loadAfterFill = loadAverage();
      const phases: Phase[] = [];
      if (!putsOnly) {
        phases.push(await phase('get'));
        const floor = await startFloorServer(filled.keys);
        try {
          phases.push(await phase('get-peer', floor.port));
        } finally {
          await floor.close();
        }
      }
      phases.push(await phase('put-direct'));
      // How the kgate PUTs reached the broker: PUTs per Produce request is the client's merging,
      // Fetch requests meanwhile the polling that shares the connection.
      const before = await kgateRequests(gw.engine);
      const putPhase = await phase('put-kgate');
      const during = await kgateRequests(gw.engine);
      phases.push(putPhase, await phase('put-direct'));
      const produces = during.produce - before.produce;
      const requests = { produce: produces, fetch: during.fetch - before.fetch, puts: putPhase.ok };
      return { filled, phases, loadAfterFill, rss: rss.peak(), requests };
    } finally {
      rss.stop();
      await child.close();
      await gw.stop();
    }
  });
  const { filled } = report;
  console.log(
    `\n${fmt(filled.keys)} keys of ${size} B produced in ${fmt(filled.fillMs / 1000, 1)} s; ` +
      `kgate answered the last key ${fmt(filled.warmMs / 1000, 1)} s after the fill ended; ` +
      `load average after the fill: ${report.loadAfterFill}; kgate peak RSS ${fmt(report.rss / MiB)} MiB`,
  );
  printTable(
    ['scenario', 'requests', 'ok', 'ok/s', 'p50 ms', 'p99 ms', 'max ms', 'status / notes'],
    report.phases.map((p) => [
      p.name,
      fmt(p.requests),
      fmt(p.ok),
      fmt(p.ok / (p.elapsedMs / 1000)),
      ms(p.latency.p50),
      ms(p.latency.p99),
      ms(p.latency.max),
      p.note,
    ]),
  );
  const { requests } = report;
  console.log(
    `kgate ${produceMethod} phase: ${fmt(requests.produce)} Produce requests (${fmt(requests.puts / Math.max(1, requests.produce), 1)} ${produceMethod}s each), ` +
      `${fmt(requests.fetch)} Fetch requests`,
  );
  console.log(`load average at end: ${loadAverage()}`);
}

/**
 * The GET peer: a bare node:http server in the gateway's process answering every filled key with
 * the value the fill produced for it, from nothing but memory. No Kafka client and no cache, so
 * its latency is the floor this machine, this load process and Node's HTTP stack put under any
 * Node gateway; kgate's ratio to it is what the gateway itself costs.
 */
async function startFloorServer(keys: number): Promise<{ port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const id = /^\/items\/(\d+)$/.exec(req.url ?? '')?.[1];
    if (id === undefined || Number(id) >= keys) {
      res.writeHead(404).end();
      return;
    }
    const value = body(id);
    res.writeHead(200, {
      'Content-Type': 'application/json',
      'Content-Length': String(value.length),
      ETag: `"${id}"`,
    });
    res.end(value);
  });
  // Node's default keep-alive timeout, 5 s, is also kgate's.
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the floor server has no port');
  return {
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * The gateway's event-loop delay and garbage-collection pauses while a phase runs: what holds
 * every request of this process back at once, and so what a latency tail is made of.
 */
function watchStalls(): { stop(): string } {
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  const cpuAtStart = process.cpuUsage();
  let gcMs = 0;
  let gcMax = 0;
  let majors = 0;
  let minors = 0;
  const gc = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const detail: unknown = 'detail' in entry ? entry.detail : undefined;
      const kind =
        typeof detail === 'object' && detail !== null && 'kind' in detail ? detail.kind : undefined;
      if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) majors++;
      else if (kind === constants.NODE_PERFORMANCE_GC_MINOR) minors++;
      gcMs += entry.duration;
      gcMax = Math.max(gcMax, entry.duration);
    }
  });
  gc.observe({ entryTypes: ['gc'] });
  return {
    stop() {
      delay.disable();
      gc.disconnect();
      const gcKinds = `${majors} major, ${minors} minor`;
      const cpu = process.cpuUsage(cpuAtStart);
      const p99 = delay.percentile(99) / 1e6;
      const max = delay.max / 1e6;
      return (
        `event-loop delay p99 ${fmt(p99, 1)} ms, max ${fmt(max, 1)} ms; ` +
        `GC ${fmt(gcMs, 0)} ms in all, longest pause ${fmt(gcMax, 1)} ms (${gcKinds}); ` +
        `heap used ${fmt(process.memoryUsage().heapUsed / MiB)} MiB; ` +
        `CPU ${fmt(cpu.user / 1000, 0)} ms user, ${fmt(cpu.system / 1000, 0)} ms system`
      );
    },
  };
}

/** Requests kgate's Kafka client has sent so far, by API. */
async function kgateRequests(engine: Gateway['engine']): Promise<{ produce: number; fetch: number }> {
  const metric = engine.metrics.getSingleMetric('kgate_kafka_client_requests_total') as Counter | undefined;
  const values = metric === undefined ? [] : (await metric.get()).values;
  const sum = (api: string): number =>
    values.filter((v) => String(v.labels['api']).toLowerCase() === api).reduce((a, v) => a + v.value, 0);
  return { produce: sum('produce'), fetch: sum('fetch') };
}

if (args.role === 'load') await load();
else await gateway();
