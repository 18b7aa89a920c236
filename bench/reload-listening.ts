// Connections refused while a config reload restarts the chain behind a listener (docs/security.md, 14):
//   node bench/reload-listening.ts [--kgate src/cli/main.ts] [--rounds 3] [--interval-ms 2] [--slow-clients 1]
// Starts one embedded broker and `kgate start` on a REST listener and an SSE listener over one
// kafka chain (the shape of test/e2e/reload.test.ts), opens an SSE stream, and before each reload
// `slow-clients` connections to the REST port that send half a request head and wait: connections
// the old listener's drain waits for until its 5 s budget runs out. Then it edits the
// cache_server's bootstrap topics `rounds` times: each edit restarts every binding in front of the
// cache. During each reload a client connects to both ports every `interval-ms`; the table gives
// the attempts, how many were refused and the time from the first refusal to the last. `--kgate` names the CLI entry to run, e.g.
// the src/cli/main.ts of a checkout of an older commit. Stops by itself within 10 minutes.

import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { reservePorts } from '../src/embedded/kafka/ports.ts';
import { fmt, printEnvironment, printTable, withBroker } from './lib/common.ts';

const { values: args } = parseArgs({
  options: {
    kgate: { type: 'string', default: 'src/cli/main.ts' },
    rounds: { type: 'string', default: '3' },
    'interval-ms': { type: 'string', default: '2' },
    'slow-clients': { type: 'string', default: '1' },
  },
});
const SLOW_CLIENTS = Number(args['slow-clients']);
const KGATE = resolve(args.kgate);
const ROUNDS = Number(args.rounds);
const INTERVAL_MS = Number(args['interval-ms']);

function config(bootstrap: string, restPort: number, ssePort: number, cached: string): string {
  return [
    'name: reload-bench',
    'bindings:',
    '  tcp_rest:',
    '    type: tcp',
    '    kind: server',
    `    options: { host: 127.0.0.1, port: ${restPort} }`,
    '    exit: http_rest',
    '  http_rest: { type: http, kind: server, exit: rest }',
    '  rest:',
    '    type: http-kafka',
    '    kind: proxy',
    '    routes:',
    '      - when: [{ method: PUT, path: "/items/{id}" }]',
    '        exit: north',
    '        with: { capability: produce, topic: items, key: "${params.id}" }',
    '  tcp_sse:',
    '    type: tcp',
    '    kind: server',
    `    options: { host: 127.0.0.1, port: ${ssePort} }`,
    '    exit: http_sse',
    '  http_sse: { type: http, kind: server, exit: sse }',
    '  sse: { type: sse, kind: server, exit: events }',
    '  events:',
    '    type: sse-kafka',
    '    kind: proxy',
    '    routes:',
    '      - when: [{ path: /events }]',
    '        exit: north',
    '        with: { topic: items }',
    '  north: { type: kafka, kind: cache_client, exit: cache }',
    `  cache: { type: kafka, kind: cache_server, options: { bootstrap: [${cached}] }, exit: south }`,
    `  south: { type: kafka, kind: client, options: { servers: ["${bootstrap}"] } }`,
    '',
  ].join('\n');
}

/** undefined when the connection was accepted, else its error code. */
function attempt(port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
  });
}

async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

printEnvironment(
  `node bench/reload-listening.ts --kgate ${args.kgate} --rounds ${ROUNDS} --interval-ms ${INTERVAL_MS} --slow-clients ${SLOW_CLIENTS}`,
);
const rows = await withBroker(10 * 60_000, async (kafka, signal) => {
  await kafka.createTopic('items', { partitions: 1 });
  await kafka.createTopic('other', { partitions: 1 });
  const dir = await mkdtemp(join(tmpdir(), 'kgate-bench-reload-'));
  const [restPort = 0, ssePort = 0] = (await reservePorts(2)).ports;
  const file = join(dir, 'kgate.yaml');
  await writeFile(file, config(kafka.bootstrap, restPort, ssePort, 'items'));
  const kgate = spawn(process.execPath, [KGATE, 'start', '-c', file, '--cache-dir', join(dir, 'cache')], {
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '', KGATE_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  kgate.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const stream = new AbortController();
  signal.addEventListener('abort', () => kgate.kill('SIGKILL'), { once: true });
  try {
    await until('kgate started', () => stderr.includes('kgate started'));
    const sse = await fetch(`http://127.0.0.1:${ssePort}/events`, {
      headers: { accept: 'text/event-stream' },
      signal: stream.signal,
    });
    void sse.body?.pipeTo(new WritableStream()).catch(() => undefined);
    const rows: string[][] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const reloaded = stderr.split('"config reloaded"').length;
      const cached = round % 2 === 1 ? 'items, other' : 'items';
      const outcomes: { at: number; error: string | undefined }[] = [];
      let reloading = true;
      const probing = (async () => {
        while (reloading) {
          const at = Date.now();
          void attempt(restPort).then((error) => outcomes.push({ at, error }));
          void attempt(ssePort).then((error) => outcomes.push({ at, error }));
          await new Promise((r) => setTimeout(r, INTERVAL_MS));
        }
      })();
      const slow = Array.from({ length: SLOW_CLIENTS }, () => {
        const socket = connect(restPort, '127.0.0.1', () =>
          socket.write('GET /items/1 HTTP/1.1\r\nHost: x\r\n'),
        );
        socket.on('error', () => undefined);
        return socket;
      });
      await new Promise((r) => setTimeout(r, 100));
      const started = Date.now();
      await writeFile(file, config(kafka.bootstrap, restPort, ssePort, cached));
      await until('the reload', () => stderr.split('"config reloaded"').length > reloaded);
      const reloadMs = Date.now() - started;
      // A little past the reload, so that the last refusals are counted.
      await new Promise((r) => setTimeout(r, 200));
      reloading = false;
      await probing;
      for (const socket of slow) socket.destroy();
      await new Promise((r) => setTimeout(r, 200));
      const refused = outcomes.filter((o) => o.error !== undefined).sort((a, b) => a.at - b.at);
      const window = refused.length === 0 ? 0 : (refused.at(-1)?.at ?? 0) - (refused[0]?.at ?? 0);
      const codes = [...new Set(refused.map((o) => o.error))].join(', ');
      rows.push([
        String(round),
        fmt(reloadMs),
        fmt(outcomes.length),
        fmt(refused.length),
        fmt(window),
        codes === '' ? '-' : codes,
      ]);
      await new Promise((r) => setTimeout(r, 1_000));
    }
    return rows;
  } finally {
    stream.abort();
    kgate.kill('SIGTERM');
    await new Promise((r) => kgate.once('close', r));
    await rm(dir, { recursive: true, force: true });
  }
});
printTable(['round', 'reload ms', 'connects', 'refused', 'refusal window ms', 'errors'], rows);
