// Memory a hostile client can make kgate spend, through tcp -> http -> http-kafka / sse-kafka ->
// cache_client -> cache_server -> client and a real broker:
//   node bench/hostile-clients.ts --scenario waiters   [--clients 1000] [--doc-mb 6]
//   node bench/hostile-clients.ts --scenario pipelined [--clients 300]  [--doc-mb 6]
//   node bench/hostile-clients.ts --scenario unread    [--clients 2000] [--doc-mb 6]
//   node bench/hostile-clients.ts --scenario sse       [--clients 200]  [--value-kb 1000] [--values 20]
//   node bench/hostile-clients.ts --scenario forged    --doc-mb 0.1 --value-kb 1 --values 3
//   common: [--rss-limit-mb 4096] [--heap-mb 4096] [--hold-seconds 10]
// - waiters: `clients` parked `GET /items` with `If-None-Match: <current>` and `Prefer: wait=20`
//   on a compacted topic whose merged document is `doc-mb` MB, then one PUT wakes them all; the
//   clients read their answers.
// - pipelined: one connection sends `clients` pipelined `GET /items` in one write and reads nothing.
// - unread: `clients` connections send one `GET /items` each and read nothing.
// - sse: `clients` event streams over `values` values of `value-kb` KB, none of them read.
// - forged: made-up positions: an If-None-Match past the end of the topic, a Last-Event-ID naming
//   1,000 partitions, and one past the end followed by a new event.
// For the last three, the clients are held `hold-seconds`, then closed, and the gateway's heap is
// measured again after a full GC: what closing gave back.
// kgate runs in a forked child process with `--max-old-space-size=<heap-mb>`, killed when its RSS
// (read from /proc every 50 ms) passes `rss-limit-mb`, so a run that would exhaust memory reports
// where it stopped instead of taking the machine with it. The clients run in this process, the broker in
// its own JVM. Figures: the child's peak RSS, and its process.memoryUsage() (the V8 heap plus
// the memory of Buffers outside it, `external`) sampled every 50 ms by the child itself.

import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { defaultRegistry } from '../src/bindings/index.ts';
import type { TcpServerBinding } from '../src/bindings/tcp/server.ts';
import { parseConfig } from '../src/config/index.ts';
import { Engine } from '../src/engine/engine.ts';
import { encodeProgress } from '../src/bindings/proxies/progress-token.ts';
import { fmt, printEnvironment, printTable, withBroker } from './lib/common.ts';
import { MiB } from './north-common.ts';

const { values: args } = parseArgs({
  options: {
    scenario: { type: 'string', default: 'waiters' },
    clients: { type: 'string' },
    'doc-mb': { type: 'string', default: '6' },
    'value-kb': { type: 'string', default: '1000' },
    values: { type: 'string', default: '20' },
    'rss-limit-mb': { type: 'string', default: '4096' },
    'heap-mb': { type: 'string', default: '4096' },
    'hold-seconds': { type: 'string', default: '10' },
    role: { type: 'string', default: 'bench' },
    bootstrap: { type: 'string', default: '' },
  },
});
const scenario = args.scenario;
const DEFAULT_CLIENTS: Record<string, number> = { waiters: 1000, pipelined: 300, unread: 2000, sse: 200 };
const clients = Number(args.clients ?? DEFAULT_CLIENTS[scenario] ?? 100);
const docMb = Number(args['doc-mb']);
const valueKb = Number(args['value-kb']);
const valueCount = Number(args.values);
const rssLimitMb = Number(args['rss-limit-mb']);
const heapMb = Number(args['heap-mb']);
const holdSeconds = Number(args['hold-seconds']);

/** What the gateway reports. */
interface Memory {
  readonly rss: number;
  readonly heap: number;
  readonly external: number;
}
type Up = { type: 'ready'; port: number } | { type: 'memory'; now: Memory; peak: Memory };
type Down = { type: 'reset' } | { type: 'measure'; gc: boolean };

// ---- the gateway child ----

function gatewayYaml(bootstrap: string): string {
  return `
name: hostile
bindings:
  tcp: { type: tcp, kind: server, options: { host: 127.0.0.1, port: 0 }, exit: http }
  http:
    type: http
    kind: server
    routes:
      - when: [{ headers: { ":path": "/stream" } }]
        exit: sse
    exit: rest
  sse: { type: sse, kind: server, exit: events }
  events:
    type: sse-kafka
    kind: proxy
    routes:
      - { when: [{ path: /stream }], exit: north, with: { topic: events } }
  rest:
    type: http-kafka
    kind: proxy
    routes:
      - when: [{ method: GET, path: /items }]
        exit: north
        with: { capability: fetch, topic: items, merge: { content-type: application/json } }
      - when: [{ method: PUT, path: "/items/{id}" }]
        exit: north
        with: { capability: produce, topic: items, key: "\${params.id}" }
      - when: [{ method: PUT, path: "/events/{id}" }]
        exit: north
        with: { capability: produce, topic: events, key: "\${params.id}" }
  north:
    type: kafka
    kind: cache_client
    options: { topics: [{ name: events, defaultOffset: historical }] }
    exit: cache
  cache: { type: kafka, kind: cache_server, exit: south }
  south: { type: kafka, kind: client, options: { servers: ["${bootstrap}"] } }
`;
}

function memoryNow(): Memory {
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed, external: m.external };
}

async function gatewayRole(): Promise<void> {
  const stateDir = await mkdtemp(join(tmpdir(), 'kgate-bench-hostile-'));
  const engine = new Engine(parseConfig(gatewayYaml(args.bootstrap), 'hostile.yaml'), defaultRegistry(), {
    logger: pino({ level: 'silent' }),
    stateDir,
  });
  await engine.start();
  const port = (engine.binding('tcp') as TcpServerBinding).ports[0] ?? 0;
  let peak = memoryNow();
  const sample = (): void => {
    const m = memoryNow();
    peak = {
      rss: Math.max(peak.rss, m.rss),
      heap: Math.max(peak.heap, m.heap),
      external: Math.max(peak.external, m.external),
    };
  };
  setInterval(sample, 50);
  process.on('message', (message: Down) => {
    if (message.type === 'reset') {
      peak = memoryNow();
      return;
    }
    if (message.gc) for (let i = 0; i < 3; i++) globalThis.gc?.();
    sample();
    process.send?.({ type: 'memory', now: memoryNow(), peak } satisfies Up);
  });
  process.on('disconnect', () => {
    void engine
      .stop(2_000)
      .finally(() => rm(stateDir, { recursive: true, force: true }).then(() => process.exit(0)));
  });
  process.send?.({ type: 'ready', port } satisfies Up);
}

// ---- the bench ----

class Gateway {
  readonly #child: ChildProcess;
  readonly #queue: Up[] = [];
  readonly #waiters: ((message: Up) => void)[] = [];
  readonly exited: Promise<string>;
  #stderr = '';
  #exit: string | undefined;
  #since = Date.now();
  #rssPeak = 0;
  readonly #watch: NodeJS.Timeout;

  constructor(bootstrap: string) {
    this.#child = fork(
      import.meta.filename,
      ['--role', 'gateway', '--bootstrap', bootstrap, ...passThrough()],
      {
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
        execArgv: ['--expose-gc', `--max-old-space-size=${heapMb}`],
      },
    );
    this.#child.stderr?.on(
      'data',
      (chunk: Buffer) => (this.#stderr = (this.#stderr + chunk.toString()).slice(-4000)),
    );
    // Watched from here, not by the gateway's own timers: a gateway whose event loop is stuck
    // growing must still be stopped at the limit.
    this.#watch = setInterval(() => this.#watchRss(), 50);
    this.#child.on('message', (message: Up) => {
      const waiter = this.#waiters.shift();
      if (waiter !== undefined) waiter(message);
      else this.#queue.push(message);
    });
    this.exited = new Promise((resolve) =>
      this.#child.once('exit', (code, signal) => {
        const oom = /heap out of memory|Allocation failed/i.test(this.#stderr);
        const after = `after ${fmt((Date.now() - this.#since) / 1000, 1)} s`;
        this.#exit ??= oom
          ? `died: JavaScript heap out of memory ${after}`
          : `died (${String(code ?? signal)}) ${after}`;
        resolve(this.#exit);
        clearInterval(this.#watch);
        for (const waiter of this.#waiters.splice(0)) waiter({ type: 'ready', port: 0 });
      }),
    );
  }

  #watchRss(): void {
    let rss: number;
    try {
      rss = Number(readFileSync(`/proc/${this.#child.pid}/statm`, 'utf8').split(' ')[1]) * 4096;
    } catch {
      return;
    }
    this.#rssPeak = Math.max(this.#rssPeak, rss);
    if (rss > rssLimitMb * MiB && this.#exit === undefined) {
      this.#exit = `stopped at the RSS limit (${fmt(rss / MiB)} MiB) after ${fmt((Date.now() - this.#since) / 1000, 1)} s`;
      this.#child.kill('SIGKILL');
    }
  }

  /** Peak RSS since the last reset(), as the kernel counts it. */
  get rssPeak(): number {
    return this.#rssPeak;
  }

  get dead(): string | undefined {
    return this.#exit;
  }

  async next(): Promise<Up> {
    const queued = this.#queue.shift();
    if (queued !== undefined) return queued;
    if (this.#exit !== undefined) throw new Error(this.#exit);
    const message = await new Promise<Up>((resolve) => this.#waiters.push(resolve));
    if (this.#exit !== undefined) throw new Error(this.#exit);
    return message;
  }

  reset(): void {
    this.#since = Date.now();
    this.#rssPeak = 0;
    if (this.#exit === undefined) this.#child.send({ type: 'reset' } satisfies Down);
  }

  /** Undefined once the gateway is gone. */
  async measure(gc: boolean): Promise<{ now: Memory; peak: Memory } | undefined> {
    if (this.#exit !== undefined) return undefined;
    this.#child.send({ type: 'measure', gc } satisfies Down);
    try {
      const message = await this.next();
      if (message.type !== 'memory') throw new Error(`unexpected ${message.type}`);
      return message;
    } catch (error) {
      if (this.#exit !== undefined) return undefined;
      throw error;
    }
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 10_000);
    this.#child.disconnect();
    await this.exited;
    clearTimeout(timer);
  }
}

function passThrough(): string[] {
  return ['--rss-limit-mb', String(rssLimitMb), '--heap-mb', String(heapMb)];
}

// Kept-alive connections for the fills, whose requests follow one another; a request after a
// pause goes on a connection of its own (`fresh`), since one idle for the server's keep-alive
// time may be closed by it just as the request is sent.
const agent = new Agent({ keepAlive: true, maxSockets: 32 });

function call(
  port: number,
  method: string,
  path: string,
  body?: Buffer | string,
  fresh = false,
): Promise<{ status: number; etag: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ agent: fresh ? false : agent, host: '127.0.0.1', port, method, path }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          etag: String(res.headers.etag ?? ''),
          body: Buffer.concat(chunks),
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function fillItems(port: number): Promise<number> {
  const keys = Math.round((docMb * MiB) / 1000);
  const pad = 'x'.repeat(960);
  for (let i = 0; i < keys; i += 64) {
    await Promise.all(
      Array.from({ length: Math.min(64, keys - i) }, async (_, j) => {
        const id = i + j;
        const value = JSON.stringify({ id, pad }).slice(0, 1000);
        const put = await call(port, 'PUT', `/items/k${id}`, value.padEnd(1000, ' '));
        if (put.status !== 204) throw new Error(`PUT answered ${put.status}`);
      }),
    );
  }
  // The GET answers once the cache reached the last write acknowledged: the whole document.
  const got = await call(port, 'GET', '/items');
  const length = (JSON.parse(got.body.toString()) as unknown[]).length;
  if (length !== keys) throw new Error(`the document holds ${length} of ${keys} items`);
  return got.body.length;
}

async function fillEvents(port: number): Promise<void> {
  const value = Buffer.alloc(valueKb * 1000, 'v');
  for (let i = 0; i < valueCount; i++) {
    const put = await call(port, 'PUT', `/events/e${i}`, value);
    if (put.status !== 204) throw new Error(`PUT answered ${put.status}: ${put.body.toString()}`);
  }
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => resolve(socket));
    socket.on('error', reject);
  });
}

async function openMany(port: number, count: number): Promise<Socket[]> {
  const sockets: Socket[] = [];
  for (let i = 0; i < count; i += 100)
    sockets.push(...(await Promise.all(Array.from({ length: Math.min(100, count - i) }, () => open(port)))));
  for (const socket of sockets) socket.on('error', () => undefined);
  return sockets;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function mb(bytes: number): string {
  return Number.isNaN(bytes) ? '-' : fmt(bytes / MiB);
}

type Row = readonly string[];

async function waiters(gw: Gateway, port: number): Promise<Row[]> {
  const docBytes = await fillItems(port);
  const current = await call(port, 'GET', '/items');
  const base = await gw.measure(true);
  if (base === undefined) throw new Error('the gateway is gone');
  const sockets = await openMany(port, clients);
  const statuses = new Map<string, number>();
  let answered = 0;
  const done = sockets.map(
    (socket) =>
      new Promise<void>((resolve) => {
        let head = '';
        let counted = false;
        const finish = (status: string): void => {
          if (counted) return;
          counted = true;
          answered++;
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
          resolve();
        };
        socket.on('data', (chunk: Buffer) => {
          if (head.length < 16) head += chunk.toString('latin1', 0, 16);
          const status = head.slice(9, 12);
          // Each client reads its answer; the document is whole once the socket has its length.
          if (status !== '200' && head.length >= 12) finish(status);
        });
        socket.on('end', () => finish(head.slice(9, 12) || 'none'));
        socket.on('close', () => finish(head.slice(9, 12) || 'closed'));
        socket.write(
          `GET /items HTTP/1.1\r\nHost: bench\r\nIf-None-Match: ${current.etag}\r\nPrefer: wait=20\r\nConnection: close\r\n\r\n`,
        );
      }),
  );
  // Parked: nothing tells a client, so the bench gives the gateway time to take every request.
  await sleep(2_000 + clients * 2);
  const parked = await gw.measure(true);
  gw.reset();
  const began = Date.now();
  await call(port, 'PUT', '/items/k0', JSON.stringify({ id: 0, changed: true }), true);
  await Promise.race([Promise.all(done), gw.exited, sleep(60_000)]);
  const seconds = (Date.now() - began) / 1000;
  const outcome = gw.dead ?? 'alive';
  const after = await gw.measure(false);
  for (const socket of sockets) socket.destroy();
  return [
    [
      `${fmt(clients)} waiters, ${mb(docBytes)} MB document`,
      outcome,
      `${fmt(answered)} (${[...statuses].map(([s, n]) => `${n}x${s}`).join(', ')})`,
      fmt(seconds, 1),
      mb(base.now.rss),
      `${mb(parked?.now.rss ?? NaN)} (${fmt(((parked?.now.rss ?? NaN) - base.now.rss) / clients / 1024)} KiB each)`,
      mb(gw.rssPeak),
      mb((after?.peak.heap ?? NaN) + (after?.peak.external ?? NaN)),
    ],
  ];
}

async function unreadGets(gw: Gateway, port: number, pipelined: boolean): Promise<Row[]> {
  const docBytes = await fillItems(port);
  const base = await gw.measure(true);
  if (base === undefined) throw new Error('the gateway is gone');
  gw.reset();
  const sockets = await openMany(port, pipelined ? 1 : clients);
  for (const socket of sockets) {
    socket.pause();
    socket.write('GET /items HTTP/1.1\r\nHost: bench\r\n\r\n'.repeat(pipelined ? clients : 1));
  }
  await Promise.race([sleep(holdSeconds * 1000), gw.exited]);
  return closeAndMeasure(gw, sockets, base, [
    pipelined
      ? `1 connection, ${fmt(clients)} pipelined GETs, ${mb(docBytes)} MB document`
      : `${fmt(clients)} connections, 1 GET each, ${mb(docBytes)} MB document`,
  ]);
}

async function sse(gw: Gateway, port: number): Promise<Row[]> {
  await fillEvents(port);
  const base = await gw.measure(true);
  if (base === undefined) throw new Error('the gateway is gone');
  gw.reset();
  const sockets = await openMany(port, clients);
  for (const socket of sockets) {
    socket.pause();
    socket.write('GET /stream HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n');
  }
  await Promise.race([sleep(holdSeconds * 1000), gw.exited]);
  return closeAndMeasure(gw, sockets, base, [
    `${fmt(clients)} unread event streams, ${fmt(valueCount)} values of ${fmt(valueKb)} KB`,
  ]);
}

async function closeAndMeasure(
  gw: Gateway,
  sockets: Socket[],
  base: { now: Memory },
  label: readonly string[],
): Promise<Row[]> {
  const held = await gw.measure(false);
  for (const socket of sockets) socket.destroy();
  await sleep(1_000);
  const closed = await gw.measure(true);
  const perClient = (gw.rssPeak - base.now.rss) / clients;
  return [
    [
      ...label,
      gw.dead ?? 'alive',
      mb(base.now.rss),
      mb(gw.rssPeak),
      mb((held?.peak.heap ?? NaN) + (held?.peak.external ?? NaN)),
      fmt(perClient / 1024),
      `${mb(base.now.heap + base.now.external)} -> ${mb((closed?.now.heap ?? NaN) + (closed?.now.external ?? NaN))}`,
    ],
  ];
}

/** Reads an event stream for `ms`, from `lastEventId`, while `during` runs; the ids it saw. */
async function eventIds(
  port: number,
  lastEventId: string,
  ms: number,
  during: () => Promise<void>,
): Promise<string[]> {
  const socket = await open(port);
  let text = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (text += chunk.length > 100_000 ? chunk.slice(0, 100_000) : chunk));
  socket.write(
    `GET /stream HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\nLast-Event-ID: ${lastEventId}\r\n\r\n`,
  );
  await sleep(500);
  await during();
  await sleep(ms);
  socket.destroy();
  return [...text.matchAll(/^id: (.*)$/gm)].map((m) => m[1] ?? '');
}

/** Positions a client made up: echoed, kept to, or held to the topic. */
async function forged(port: number): Promise<Row[]> {
  await fillItems(port);
  const rows: Row[] = [];
  const pastEnd = `"${encodeProgress(
    new Map([
      [0, 2n ** 62n],
      [1, 2n ** 62n],
    ]),
  )}"`;
  const conditional = (): Promise<{ status: number; etag: string }> =>
    new Promise((resolve, reject) => {
      const req = request(
        { agent, host: '127.0.0.1', port, path: '/items', headers: { 'if-none-match': pastEnd } },
        (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, etag: String(res.headers.etag ?? '') }));
        },
      );
      req.on('error', reject);
      req.end();
    });
  const first = await conditional();
  await call(port, 'PUT', '/items/k0', JSON.stringify({ id: 0, changed: true }), true);
  const second = await conditional();
  rows.push([
    'If-None-Match past the end of every partition, before and after a change',
    `${first.status}, ${second.status}`,
    first.etag === pastEnd ? 'the forgery' : `an ETag of the topic (${first.etag.length} B)`,
  ]);
  await fillEvents(port);
  const manyPartitions = encodeProgress(
    new Map(Array.from({ length: 1000 }, (_, i) => [i, 0n] as [number, bigint])),
  );
  const many = await eventIds(port, manyPartitions, 1_000, async () => undefined);
  rows.push([
    `Last-Event-ID naming 1,000 partitions (${fmt(manyPartitions.length)} B)`,
    `${fmt(many.length)} events`,
    `ids of ${fmt(Math.max(0, ...many.map((id) => id.length)))} B`,
  ]);
  const ahead = encodeProgress(new Map([[0, 2n ** 62n]]));
  const late = await eventIds(port, ahead, 3_000, async () => {
    await call(port, 'PUT', '/events/late', 'arrived', true);
  });
  rows.push([
    'Last-Event-ID past the end, then one new event',
    `${fmt(late.length)} events in 3 s`,
    late.length === 0 ? 'silent' : `ids of ${fmt(Math.max(...late.map((id) => id.length)))} B`,
  ]);
  return rows;
}

async function bench(): Promise<void> {
  printEnvironment(`node bench/hostile-clients.ts ${process.argv.slice(2).join(' ')}`.trim());
  const rows = await withBroker(10 * 60_000, async (cluster) => {
    await cluster.createTopic('items', {
      partitions: 2,
      configs: { 'cleanup.policy': 'compact', 'max.message.bytes': String(2 * MiB) },
    });
    await cluster.createTopic('events', { partitions: 1, configs: { 'max.message.bytes': String(2 * MiB) } });
    const gw = new Gateway(cluster.bootstrap);
    try {
      const ready = await gw.next();
      if (ready.type !== 'ready') throw new Error('the gateway did not start');
      if (scenario === 'waiters') return await waiters(gw, ready.port);
      if (scenario === 'pipelined') return await unreadGets(gw, ready.port, true);
      if (scenario === 'unread') return await unreadGets(gw, ready.port, false);
      if (scenario === 'sse') return await sse(gw, ready.port);
      if (scenario === 'forged') return await forged(ready.port);
      throw new Error(`unknown scenario ${scenario}`);
    } finally {
      agent.destroy();
      await gw.stop();
    }
  });
  console.log(`gateway: --max-old-space-size=${heapMb}, stopped past ${fmt(rssLimitMb)} MiB RSS`);
  if (scenario === 'forged') printTable(['case', 'answered', 'echoed'], rows);
  else if (scenario === 'waiters')
    printTable(
      [
        'case',
        'gateway',
        'answered',
        's',
        'RSS before MiB',
        'RSS parked MiB',
        'peak RSS MiB',
        'peak heap+external MiB',
      ],
      rows,
    );
  else
    printTable(
      [
        'case',
        'gateway',
        'RSS before MiB',
        'peak RSS MiB',
        'peak heap+external MiB',
        'RSS per client KiB',
        'heap+external before -> after close MiB',
      ],
      rows,
    );
}

if (args.role === 'gateway') await gatewayRole();
else await bench();
