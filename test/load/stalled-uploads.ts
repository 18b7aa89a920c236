// Uploads that send most of their body and stall, against kgate's http-kafka produce path with
// its default staging budget (64 MiB) and timeouts: how much of the budget they take, whether
// another producer is still served and how long it waits, and when the stalled ones are let go.
// Not part of `npm test`: it starts a broker, runs for about a minute and stops by itself.
//
//   node test/load/stalled-uploads.ts                 # 70 HTTP/1.1 uploads, 990,000 of 1,000,000 bytes
//   node test/load/stalled-uploads.ts --http2         # the same as streams of one HTTP/2 connection
//   node test/load/stalled-uploads.ts --stalled 10 --observe 45
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect as http2Connect, type ClientHttp2Session } from 'node:http2';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CacheClientBinding } from '../../src/bindings/kafka/cache_client/index.ts';
import { startKafka } from '../../src/embedded/kafka/index.ts';
import { startYamlEngine } from '../support/yaml-engine.ts';

const { values } = parseArgs({
  options: {
    stalled: { type: 'string', default: '70' },
    size: { type: 'string', default: '1000000' },
    sent: { type: 'string', default: '990000' },
    observe: { type: 'string', default: '60' },
    http2: { type: 'boolean', default: false },
  },
});
const STALLED = Number(values.stalled);
const SIZE = Number(values.size);
const SENT = Number(values.sent);
const OBSERVE_MS = Number(values.observe) * 1000;
const TOPIC = 'uploads';

interface Outcome {
  status?: number;
  ms?: number;
}

const started = performance.now();
const since = (): number => Math.round(performance.now() - started);
// Stops the run whatever happens, broker included.
const deadline = setTimeout(() => {
  console.error('deadline passed; exiting');
  process.exit(2);
}, OBSERVE_MS + 180_000);
deadline.unref();

const kafka = await startKafka();
const stateDir = await mkdtemp(join(tmpdir(), 'kgate-stalled-uploads-'));
try {
  await kafka.createTopic(TOPIC, { partitions: 3 });
  const yaml = `
name: stalled-uploads
bindings:
  tcp: { type: tcp, kind: server, options: { host: 127.0.0.1, port: 0 }, exit: http }
  http: { type: http, kind: server, exit: rest }
  rest:
    type: http-kafka
    kind: proxy
    routes:
      - when: [{ method: PUT, path: "/uploads/{id}" }]
        exit: north
        with: { capability: produce, topic: ${TOPIC}, key: "\${params.id}" }
  north: { type: kafka, kind: cache_client, exit: cache }
  cache: { type: kafka, kind: cache_server, exit: south }
  south: { type: kafka, kind: client, options: { servers: ["${kafka.bootstrap}"] } }
`;
  const { engine, port } = await startYamlEngine(yaml, 'stalled-uploads.yaml', stateDir);
  const north = engine.binding('north');
  if (!(north instanceof CacheClientBinding)) throw new Error('north is not a cache_client');
  const staging = north.staging;

  // A first produce, so that topic metadata and the producer id are in place before the clock runs.
  await honestPut(port, 'warm-up');

  const outcomes: Outcome[] = Array.from({ length: STALLED }, () => ({}));
  const body = Buffer.alloc(SENT, 0x61);
  const closers: (() => void)[] = [];
  let session: ClientHttp2Session | undefined;
  if (values.http2) {
    // Its own buffers must hold every stalled body, or it refuses the answers (ENHANCE_YOUR_CALM).
    session = http2Connect(`http://127.0.0.1:${port}`, { maxSessionMemory: 1024 });
    session.on('error', () => undefined);
    const open = session;
    closers.push(() => open.destroy());
    for (let i = 0; i < STALLED; i++) {
      const at = performance.now();
      const stream = open.request({
        ':method': 'PUT',
        ':path': `/uploads/stalled-${i}`,
        'content-length': String(SIZE),
      });
      stream.on('error', () => undefined);
      stream.on('response', (headers) => {
        outcomes[i] = { status: Number(headers[':status']), ms: Math.round(performance.now() - at) };
      });
      stream.resume();
      stream.write(body);
    }
  } else {
    for (let i = 0; i < STALLED; i++) {
      const socket = connect(port, '127.0.0.1');
      socket.on('error', () => undefined);
      closers.push(() => socket.destroy());
      const at = performance.now();
      socket.write(`PUT /uploads/stalled-${i} HTTP/1.1\r\nHost: kgate\r\nContent-Length: ${SIZE}\r\n\r\n`);
      socket.write(body);
      readStatus(socket, (status) => (outcomes[i] = { status, ms: Math.round(performance.now() - at) }));
    }
  }

  // Until the staged bytes stop growing: what the stalled uploads hold.
  let held = -1;
  for (let quiet = 0; quiet < 10;) {
    await sleep(100);
    quiet = staging.usedBytes === held ? quiet + 1 : 0;
    held = staging.usedBytes;
  }
  const heldAt = since();

  // Another producer, with a small body, while the stalled uploads hold what they hold.
  const honestAt = performance.now();
  const honest = honestPut(port, 'honest').then((status) => ({
    status,
    ms: Math.round(performance.now() - honestAt),
  }));
  const honestOutcome = await Promise.race([honest, sleep(OBSERVE_MS).then(() => undefined)]);
  // The stalled uploads' fate within the observation window.
  const until = performance.now() + Math.max(0, OBSERVE_MS - (performance.now() - honestAt));
  while (performance.now() < until && outcomes.some((o) => o.status === undefined)) await sleep(250);
  const answered = outcomes.filter((o) => o.status !== undefined);
  const statuses: Record<string, number> = {};
  for (const o of answered) statuses[String(o.status)] = (statuses[String(o.status)] ?? 0) + 1;
  const times = answered.map((o) => o.ms ?? 0).sort((a, b) => a - b);
  const report = {
    transport: values.http2 ? 'h2 (one connection)' : 'http/1.1 (one connection each)',
    stalled: STALLED,
    bodyAnnounced: SIZE,
    bodySent: SENT,
    stagingBudget: staging.maxBytes,
    stagedByStalled: held,
    stagedAtMs: heldAt,
    otherProducer:
      honestOutcome === undefined
        ? `no answer within ${OBSERVE_MS / 1000} s`
        : `${honestOutcome.status} after ${honestOutcome.ms} ms`,
    stalledAnswered: `${answered.length} of ${STALLED}`,
    stalledStatuses: statuses,
    stalledAnsweredAfterMs: times.length === 0 ? null : { first: times[0], last: times[times.length - 1] },
    stagedAtEnd: staging.usedBytes,
    rssMiB: Math.round(process.memoryUsage().rss / 1048576),
  };
  console.log(JSON.stringify(report, null, 2));
  for (const close of closers) close();
  await engine.stop(5_000);
} finally {
  await kafka.stop();
  await rm(stateDir, { recursive: true, force: true });
  clearTimeout(deadline);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Calls `done` with the status of the first response on `socket`, if one comes. */
function readStatus(socket: Socket, done: (status: number) => void): void {
  let head = '';
  const onData = (chunk: Buffer): void => {
    head += chunk.toString('latin1');
    const match = /^HTTP\/1\.1 (\d{3})/.exec(head);
    if (match !== null) {
      socket.off('data', onData);
      done(Number(match[1]));
    }
  };
  socket.on('data', onData);
}

async function honestPut(port: number, id: string): Promise<number> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  socket.write(
    `PUT /uploads/${id} HTTP/1.1\r\nHost: kgate\r\nConnection: close\r\nContent-Length: 1024\r\n\r\n`,
  );
  socket.write(Buffer.alloc(1024, 0x62));
  const status = new Promise<number>((resolve) => readStatus(socket, resolve));
  try {
    return await status;
  } finally {
    socket.destroy();
    await once(socket, 'close');
  }
}
