// Parsers of client bytes against input crafted to make a backtracking parser backtrack:
//   node bench/hostile-parsers.ts [--sizes 16384,65536] [--slow 10] [--header-bytes 16000] [--cap-seconds 20]
//        [--no-broker]
// 1. Each parser alone, one call on each size: the event-loop time of the call (fastest of three).
//    Every call runs in a worker thread that is stopped after `cap-seconds`, reported as "> cap".
// 2. kgate with the embedded broker (tcp -> http -> http-kafka -> cache_client -> cache_server ->
//    client), a compacted topic of 10 records: the latency of an ordinary `GET /items` alone, then
//    with `slow` GETs carrying a `header-bytes` crafted If-None-Match sent at the same moment, as
//    every other client of the gateway sees it while those are parsed. Skipped with --no-broker.
// The script imports only what kgate had before these parsers were made linear, so the same file
// measures the code before the change (copied into a checkout of the earlier commit) and after.

import { request } from 'node:http';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { parseIfNoneMatch } from '../src/bindings/http-kafka/etag.ts';
import { parsePrefer } from '../src/bindings/http-kafka/prefer.ts';
import { decodeProgress } from '../src/bindings/proxies/progress-token.ts';
import { compileEventId } from '../src/bindings/sse-kafka/event-id.ts';
import { compileGlob, matchPath } from '../src/config/index.ts';
import { fmt, PARTITIONS, printEnvironment, printTable, withBroker } from './lib/common.ts';
import { startGateway } from './north-common.ts';

/** `unit` repeated to `size` code units, then `tail`. */
function fill(size: number, unit: string, tail = ''): string {
  return unit.repeat(Math.ceil(size / unit.length)).slice(0, size) + tail;
}

/** The inputs, by name: what the parser is given for a size. */
const CASES: Record<string, (size: number) => () => unknown> = {
  'If-None-Match: a token then a stray word': (size) => {
    const header = fill(size, 'a', ' b');
    return () => parseIfNoneMatch(header);
  },
  'If-None-Match: white space then two words': (size) => {
    const header = fill(size, ' ', 'x y');
    return () => parseIfNoneMatch(header);
  },
  'Last-Event-ID, template ${base64(key)}${etag}': (size) => {
    const format = compileEventId('${base64(key)}${etag}');
    const id = fill(size, 'A', '!');
    return () => format.progressOf(id);
  },
  'path /{a}-{b}': (size) => {
    const path = `/${fill(size, '-', '/')}`;
    return () => matchPath('/{a}-{b}', path);
  },
  'header glob *a*b*c': (size) => {
    const glob = compileGlob('*a*b*c');
    const value = fill(size, 'ab');
    return () => glob.test(value);
  },
  'ETag token with a huge offset': (size) => {
    const token = Buffer.from(`0:${fill(size, '9')}`).toString('base64url');
    return () => decodeProgress(token);
  },
  'Prefer: white space': (size) => {
    const header = fill(size, ' ', 'wait = 1');
    return () => parsePrefer(header);
  },
};

interface Job {
  readonly name: string;
  readonly size: number;
}

if (!isMainThread) {
  const { name, size } = workerData as Job;
  const make = CASES[name];
  if (make === undefined) throw new Error(`no case ${name}`);
  const run = make(size);
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    run();
    best = Math.min(best, performance.now() - started);
    parentPort?.postMessage(best);
  }
} else {
  await main();
}

/** The fastest of three calls, or undefined when the first did not finish within `capMs`. */
function measure(job: Job, capMs: number): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(import.meta.filename, { workerData: job });
    let best: number | undefined;
    const timer = setTimeout(() => void worker.terminate(), capMs);
    worker.on('message', (ms: number) => (best = ms));
    worker.on('error', reject);
    worker.on('exit', () => {
      clearTimeout(timer);
      resolve(best);
    });
  });
}

function get(port: number, headers: Record<string, string> = {}): Promise<{ status: number; ms: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/items', headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - started }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      sizes: { type: 'string', default: '16384,65536' },
      slow: { type: 'string', default: '10' },
      'header-bytes': { type: 'string', default: '16000' },
      'cap-seconds': { type: 'string', default: '20' },
      'no-broker': { type: 'boolean', default: false },
    },
  });
  const sizes = args.sizes.split(',').map(Number);
  const slow = Number(args.slow);
  const headerBytes = Number(args['header-bytes']);
  const capMs = Number(args['cap-seconds']) * 1000;
  printEnvironment(
    `node bench/hostile-parsers.ts --sizes ${args.sizes} --slow ${slow} --header-bytes ${headerBytes}` +
      ` --cap-seconds ${args['cap-seconds']}${args['no-broker'] ? ' --no-broker' : ''}`,
  );

  const rows: string[][] = [];
  for (const name of Object.keys(CASES)) {
    const cells = [name];
    for (const size of sizes) {
      const ms = await measure({ name, size }, capMs);
      cells.push(ms === undefined ? `> ${fmt(capMs)}` : fmt(ms, 1));
    }
    rows.push(cells);
  }
  console.log('\nOne call, ms (fastest of three):\n');
  printTable(['parser, input', ...sizes.map((s) => `${fmt(s)} B`)], rows);
  if (args['no-broker']) return;

  await withBroker(10 * 60_000, async (cluster) => {
    const topic = `hostile-items-${Date.now()}`;
    await cluster.createTopic(topic, { partitions: PARTITIONS, configs: { 'cleanup.policy': 'compact' } });
    const gw = await startGateway('hostile-parsers', [
      '  north_tcp: { type: tcp, kind: server, options: { host: 127.0.0.1, port: 0 }, exit: north_http }',
      '  north_http: { type: http, kind: server, exit: north_http_kafka }',
      '  north_http_kafka:',
      '    type: http-kafka',
      '    kind: proxy',
      '    routes:',
      '      - when: [{ method: GET, path: /items }]',
      '        exit: cache_client',
      `        with: { capability: fetch, topic: ${topic}, merge: { content-type: application/json } }`,
      '      - when: [{ method: PUT, path: "/items/{id}" }]',
      '        exit: cache_client',
      `        with: { capability: produce, topic: ${topic}, key: "\${params.id}" }`,
      '  cache_client: { type: kafka, kind: cache_client, exit: cache_server }',
      `  cache_server: { type: kafka, kind: cache_server, options: { bootstrap: [${topic}] }, exit: south }`,
      `  south: { type: kafka, kind: client, options: { servers: ["${cluster.bootstrap}"] } }`,
    ]);
    try {
      for (let i = 0; i < 10; i++) {
        await new Promise<void>((resolve, reject) => {
          const body = JSON.stringify({ id: i });
          const req = request(
            {
              host: '127.0.0.1',
              port: gw.port,
              method: 'PUT',
              path: `/items/${i}`,
              headers: { 'content-type': 'application/json', 'content-length': String(body.length) },
            },
            (res) => {
              res.resume();
              res.on('end', () => resolve());
            },
          );
          req.on('error', reject);
          req.end(body);
        });
      }
      for (let answer = await get(gw.port); answer.status !== 200; answer = await get(gw.port))
        await new Promise((resolve) => setTimeout(resolve, 200));
      const alone: number[] = [];
      for (let i = 0; i < 20; i++) alone.push((await get(gw.port)).ms);
      alone.sort((a, b) => a - b);
      const crafted = fill(headerBytes, 'a', ' b');
      const started = performance.now();
      const hostile = Array.from({ length: slow }, () => get(gw.port, { 'if-none-match': crafted }));
      // The ordinary client's request is on the wire right behind the crafted ones.
      await new Promise((resolve) => setTimeout(resolve, 5));
      const ordinary = await get(gw.port);
      const statuses = await Promise.all(hostile);
      const allMs = performance.now() - started;
      console.log('\nThrough kgate on the embedded broker, ms:\n');
      printTable(
        ['what', 'ms'],
        [
          ['ordinary GET /items alone (median of 20)', fmt(alone[10] ?? NaN, 1)],
          [`ordinary GET /items behind ${slow} crafted ones`, fmt(ordinary.ms, 1)],
          [
            `all ${slow} crafted GETs answered (statuses ${[...new Set(statuses.map((s) => s.status))].join(', ')})`,
            fmt(allMs, 1),
          ],
        ],
      );
    } finally {
      await gw.stop();
    }
  });
}
