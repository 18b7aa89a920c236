// Values whose sizes sit on every buffer boundary on the way (HTTP parser chunks, TLS records and
// HTTP/2 frames at 16 KiB, socket high-water marks at 64 KiB, the cache's read chunks), produced
// with PUT in fragments that straddle those boundaries, and read back byte for byte through GET
// over HTTP/1.1 and HTTP/2, SSE, and kcat reading the broker directly.
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { connect as http2Connect } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { encodeBatch } from '../../src/bindings/kafka/client/protocol/records.ts';
import { startKafka, type KafkaCluster } from '../../src/embedded/kafka/index.ts';
import { Engine } from '../../src/engine/engine.ts';
import { startYamlEngine } from '../support/yaml-engine.ts';
import { EventStreamParser } from '../support/event-stream.ts';

const TOPIC = 'sized';
/** One partition, so that concurrent produces meet in one batch if the client merges them. */
const BOUNDED = 'bounded';
const BOUNDED_LIMIT = 10_000;
const SIZES = [
  0, 1, 127, 128, 4095, 4096, 4097, 8191, 8192, 8193, 16383, 16384, 16385, 32768, 65535, 65536, 65537, 131072,
  262145, 1_000_000,
];

let kafka: KafkaCluster;
let engine: Engine;
let stateDir: string;
let port: number;

before(async () => {
  kafka = await startKafka();
  await kafka.createTopic(TOPIC, {
    partitions: 3,
    configs: { 'cleanup.policy': 'compact', 'max.message.bytes': String(2 * 1024 * 1024) },
  });
  await kafka.createTopic(BOUNDED, {
    partitions: 1,
    configs: { 'max.message.bytes': String(BOUNDED_LIMIT) },
  });
  stateDir = await mkdtemp(join(tmpdir(), 'kgate-north-sizes-'));
  const yaml = `
name: north-sizes
bindings:
  tcp: { type: tcp, kind: server, options: { host: 127.0.0.1, port: 0 }, exit: http }
  http:
    type: http
    kind: server
    routes: [{ when: [{ headers: { ":path": "/events/*" } }], exit: sse }]
    exit: rest
  sse: { type: sse, kind: server, exit: events }
  events:
    type: sse-kafka
    kind: proxy
    routes: [{ when: [{ path: /events/sized }], exit: north, with: { topic: ${TOPIC} } }]
  rest:
    type: http-kafka
    kind: proxy
    routes:
      - when: [{ method: GET, path: "/sized/{id}" }]
        exit: north
        with: { capability: fetch, topic: ${TOPIC}, filters: [{ key: "\${params.id}" }] }
      - when: [{ method: PUT, path: "/sized/{id}" }]
        exit: north
        with: { capability: produce, topic: ${TOPIC}, key: "\${params.id}" }
      - when: [{ method: PUT, path: "/bounded/{id}" }]
        exit: north
        with: { capability: produce, topic: ${BOUNDED}, key: "\${params.id}", overrides: { source: kgate } }
  north: { type: kafka, kind: cache_client, exit: cache }
  cache: { type: kafka, kind: cache_server, exit: south }
  south: { type: kafka, kind: client, options: { servers: ["${kafka.bootstrap}"] } }
`;
  ({ engine, port } = await startYamlEngine(yaml, 'north-sizes.yaml', stateDir));
});

after(async () => {
  await engine?.stop(5_000);
  await kafka?.stop();
  if (stateDir !== undefined) await rm(stateDir, { recursive: true, force: true });
});

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** Printable text of exactly `size` bytes, so the same value can travel as an SSE data line. */
function textOf(size: number): Buffer {
  return Buffer.from(
    randomBytes(Math.ceil((size * 3) / 4) + 3)
      .toString('base64url')
      .slice(0, size),
  );
}

/** The body in fragments cut around 8 KiB and 16 KiB boundaries, written one event-loop turn apart. */
function fragments(body: Buffer): Buffer[] {
  const cuts = [1, 8191, 8192, 8193, 16383, 16385, 65535, 65537].filter((c) => c < body.length);
  const out: Buffer[] = [];
  let at = 0;
  for (const cut of cuts) {
    if (cut <= at) continue;
    out.push(body.subarray(at, cut));
    at = cut;
  }
  out.push(body.subarray(at));
  return out;
}

async function put(id: string, body: Buffer): Promise<number> {
  const req = httpRequest({
    host: '127.0.0.1',
    port,
    method: 'PUT',
    path: `/sized/${id}`,
    agent: false,
    headers: { 'content-length': String(body.length) },
  });
  for (const piece of fragments(body)) {
    if (!req.write(piece)) await once(req, 'drain');
    await new Promise((resolve) => setImmediate(resolve));
  }
  req.end();
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  res.resume();
  await once(res, 'end');
  return res.statusCode ?? 0;
}

async function get(id: string): Promise<{ status: number; body: Buffer }> {
  const res = await fetch(`http://127.0.0.1:${port}/sized/${id}`);
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

function kcat(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('kcat', ['-b', kafka.bootstrap, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`kcat exited ${code}: ${err}`)),
    );
  });
}

describe('values on every buffer boundary, end to end', () => {
  const bodies = new Map<string, Buffer>(SIZES.map((size) => [`v${size}`, textOf(size)]));

  it('takes each size as a PUT in fragments and answers it byte for byte to GET', async () => {
    for (const [id, body] of bodies) assert.equal(await put(id, body), 204, `PUT ${id}`);
    for (const [id, body] of bodies) {
      const got = await get(id);
      assert.equal(got.status, 200, `GET ${id}`);
      assert.equal(got.body.length, body.length, `length of ${id}`);
      assert.equal(sha(got.body), sha(body), `bytes of ${id}`);
    }
  });

  it('answers each size byte for byte over HTTP/2', async () => {
    const session = http2Connect(`http://127.0.0.1:${port}`);
    try {
      for (const [id, body] of bodies) {
        const stream = session.request({ ':method': 'GET', ':path': `/sized/${id}` });
        const [headers] = (await once(stream, 'response')) as [Record<string, string | number>];
        const chunks: Buffer[] = [];
        for await (const chunk of stream) chunks.push(chunk as Buffer);
        const got = Buffer.concat(chunks);
        assert.equal(headers[':status'], 200, `GET ${id}`);
        assert.equal(sha(got), sha(body), `bytes of ${id} (${got.length} of ${body.length})`);
      }
    } finally {
      session.close();
    }
  });

  it('streams each size as one SSE event with the exact value', async () => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/events/sized', agent: false });
    req.end();
    const [res] = (await once(req, 'response')) as [IncomingMessage];
    assert.equal(res.statusCode, 200);
    const seen: string[] = [];
    const parser = new EventStreamParser();
    res.setEncoding('utf8');
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${seen.length} events`)), 20_000);
      res.on('data', (chunk: string) => {
        for (const event of parser.push(chunk)) seen.push(event.data);
        if (seen.length >= bodies.size) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    try {
      await done;
    } finally {
      req.destroy();
    }
    // Every size once, exactly (the empty value as an event with one empty data line).
    const expected = [...bodies.values()].map((b) => sha(b)).sort();
    const got = seen.map((d) => sha(d)).sort();
    assert.deepEqual(got, expected);
  });

  it('put exactly these bytes on the broker, as kcat reads them', async () => {
    const out = await kcat(['-C', '-t', TOPIC, '-o', 'beginning', '-e', '-q', '-f', '%k %S\\n']);
    const sizes = new Map(
      out
        .trim()
        .split('\n')
        .map((line) => line.split(' ') as [string, string]),
    );
    for (const [id, body] of bodies)
      assert.equal(Number(sizes.get(id)), body.length, `size of ${id} on the broker`);
  });
});

/** What a broker compares with max.message.bytes: the batch one record makes, encoded. */
function batchSize(key: string, headers: Record<string, string>, valueBytes: number): number {
  const record = { key, value: Buffer.alloc(valueBytes), headers };
  const options = { producerId: 0n, producerEpoch: 0, baseSequence: 0, compression: 'none', now: 0 } as const;
  return encodeBatch([record], options).length;
}

/** The largest value whose batch fits `limit`, found by encoding rather than by formula. */
function largestValue(key: string, headers: Record<string, string>, limit: number): number {
  let size = limit - batchSize(key, headers, 0);
  while (batchSize(key, headers, size) > limit) size--;
  return size;
}

async function putBounded(
  id: string,
  contentType: string,
  body: Buffer,
): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}/bounded/${id}`, {
    method: 'PUT',
    headers: { 'content-type': contentType },
    body,
  });
  return { status: res.status, text: await res.text() };
}

describe("the topic's max.message.bytes, to the byte, through a real broker", () => {
  it('takes every body whose record batch fits the limit and refuses the next byte up', async () => {
    const cases = [
      { id: 'k', contentType: 'a/b' },
      { id: 'key-of-63-bytes-'.padEnd(63, 'x'), contentType: 'application/json' },
      { id: 'key-of-64-bytes-'.padEnd(64, 'y'), contentType: `text/plain; p=${'z'.repeat(200)}` },
      { id: 'long-key-'.padEnd(900, 'w'), contentType: `application/octet-stream; p=${'v'.repeat(2000)}` },
    ];
    for (const { id, contentType } of cases) {
      const headers = { 'content-type': contentType, source: 'kgate' };
      const largest = largestValue(id, headers, BOUNDED_LIMIT);
      const fits = await putBounded(id, contentType, randomBytes(largest));
      assert.equal(fits.status, 204, `${largest} bytes with a ${id.length}-byte key: ${fits.text}`);
      const over = await putBounded(id, contentType, randomBytes(largest + 1));
      assert.equal(over.status, 413, `${largest + 1} bytes with a ${id.length}-byte key`);
      assert.match(over.text, /max\.message\.bytes \(10000\)/);
    }
    // The broker has each largest value, whole.
    const out = await kcat(['-C', '-t', BOUNDED, '-o', 'beginning', '-e', '-q', '-f', '%S\\n']);
    const sizes = out.trim().split('\n').map(Number);
    assert.deepEqual(
      sizes,
      cases.map(({ id, contentType }) =>
        largestValue(id, { 'content-type': contentType, source: 'kgate' }, BOUNDED_LIMIT),
      ),
    );
  });

  it('takes concurrent bodies near the limit, each in a batch the broker accepts', async () => {
    const bodies = Array.from({ length: 8 }, () => randomBytes(6_000));
    const answers = await Promise.all(bodies.map((body, i) => putBounded(`concurrent-${i}`, 'a/b', body)));
    assert.deepEqual(
      answers.map((a) => a.status),
      bodies.map(() => 204),
      answers.map((a) => a.text).join(' '),
    );
  });
});
