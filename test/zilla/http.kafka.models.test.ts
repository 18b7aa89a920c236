// Zilla's schema examples (http.kafka.avro.json, http.kafka.proto.json, http.kafka.proto.oneway)
// replayed against kgate on the configs under configs/, one broker for all three: valid bodies
// stored as binary (read back by kcat, byte for byte), invalid ones answered 400 and not stored,
// reads answered as JSON. The schema registry is a Confluent-compatible one served by the test.
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import avro from 'avsc';
import protobuf from 'protobufjs';
import { startKafka, type KafkaCluster } from '../../src/embedded/kafka/index.ts';
import { openEventStream } from '../support/event-stream.ts';
import { reservePort } from '../support/ports.ts';
import { until } from '../support/until.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CONFIGS = join(ROOT, 'test', 'zilla', 'configs');
const EVENT_SCHEMA =
  '{"fields":[{"name":"id","type":"string"},{"name":"status","type":"string"}],"name":"Event","namespace":"io.aklivity.example","type":"record"}';
const EVENT = avro.Type.forSchema(JSON.parse(EVENT_SCHEMA) as avro.Schema);
const REQUEST_PROTO = 'syntax = "proto3";\nmessage Request {\n  string message = 1;\n  int32 count = 2;\n}\n';

interface Kgate {
  readonly port: number;
  readonly child: ChildProcess;
  output: string;
}

let kafka: KafkaCluster;
let bootstrap: string;
let cacheDir: string;
let registry: Server;
let registryUrl: string;
const started: Kgate[] = [];

/** A schema registry speaking the Confluent REST API, in memory: what the examples' compose runs. */
function startRegistry(): Promise<Server> {
  const ids = new Map<string, number>();
  const schemas: { subject: string; schema: string }[] = [];
  const server = createServer((req, res) => {
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/vnd.schemaregistry.v1+json' });
      res.end(JSON.stringify(body));
    };
    const url = req.url ?? '';
    const register = /^\/subjects\/([^/]+)\/versions$/.exec(url);
    if (req.method === 'POST' && register !== null) {
      let text = '';
      req.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      req.on('end', () => {
        const { schema } = JSON.parse(text) as { schema: string };
        const subject = decodeURIComponent(register[1] ?? '');
        let id = ids.get(schema);
        if (id === undefined) {
          schemas.push({ subject, schema });
          id = schemas.length;
          ids.set(schema, id);
        }
        send(200, { id });
      });
      return;
    }
    const byId = /^\/schemas\/ids\/(\d+)$/.exec(url);
    const found = byId === null ? undefined : schemas[Number(byId[1]) - 1];
    if (found !== undefined) return send(200, { schema: found.schema });
    const version = /^\/subjects\/([^/]+)\/versions\/latest$/.exec(url);
    if (version !== null) {
      const subject = decodeURIComponent(version[1] ?? '');
      const index = schemas.findLastIndex((s) => s.subject === subject);
      if (index >= 0) {
        const entry = schemas[index];
        return send(200, { subject, version: 1, id: index + 1, schema: entry?.schema });
      }
    }
    send(404, { error_code: 40401, message: 'not found' });
  });
  server.listen(0, '127.0.0.1');
  return once(server, 'listening').then(() => server);
}

/** One record's value as kcat (librdkafka) reads it, byte for byte. */
async function kcatValue(topic: string, offset: number): Promise<Buffer> {
  const args = [
    '-b',
    bootstrap,
    '-C',
    '-t',
    topic,
    '-p',
    '0',
    '-o',
    String(offset),
    '-c',
    '1',
    '-e',
    '-q',
    '-f',
    '%s',
  ];
  const child = spawn('kcat', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
  const [code] = (await once(child, 'close')) as [number];
  assert.equal(code, 0, 'kcat failed');
  return Buffer.concat(out);
}

/** Produces one record with kcat: its value the bytes of a file, as another client wrote them. */
async function kcatProduce(topic: string, key: string, value: Buffer): Promise<void> {
  const file = join(cacheDir, `value-${Date.now()}-${Math.random()}`);
  await writeFile(file, value);
  const child = spawn('kcat', ['-b', bootstrap, '-P', '-t', topic, '-p', '0', '-k', key, file], {
    stdio: 'ignore',
  });
  const [code] = (await once(child, 'close')) as [number];
  assert.equal(code, 0, 'kcat failed');
}

before(async () => {
  kafka = await startKafka();
  bootstrap = kafka.bootstrap.split(',')[0] ?? '';
  await kafka.createTopic('items-snapshots', { partitions: 1, configs: { 'cleanup.policy': 'compact' } });
  await kafka.createTopic('events', { partitions: 1 });
  await kafka.createTopic('my-requests', { partitions: 1 });
  await kafka.createTopic('my-oneway-requests', { partitions: 1 });
  await kafka.createTopic('orders', { partitions: 1 });
  cacheDir = await mkdtemp(join(tmpdir(), 'kgate-zilla-models-'));
  registry = await startRegistry();
  registryUrl = `http://127.0.0.1:${(registry.address() as AddressInfo).port}`;
});

after(async () => {
  for (const kgate of started) if (kgate.child.exitCode === null) kgate.child.kill('SIGKILL');
  await kafka?.stop();
  registry?.close();
  if (cacheDir !== undefined) await rm(cacheDir, { recursive: true, force: true });
});

async function startConfig(file: string): Promise<Kgate> {
  const port = await reservePort();
  const env: Record<string, string> = {
    PATH: process.env['PATH'] ?? '',
    HOME: process.env['HOME'] ?? '',
    KAFKA_BOOTSTRAP_SERVER: bootstrap,
    SCHEMA_REGISTRY_SERVER: registryUrl,
    PORT: String(port),
    KGATE_LOG_LEVEL: 'warn',
  };
  const args = [
    join(ROOT, 'bin', 'kgate.js'),
    'start',
    '-c',
    join(CONFIGS, file),
    '--cache-dir',
    join(cacheDir, file),
  ];
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const kgate: Kgate = { port, child, output: '' };
  started.push(kgate);
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (kgate.output += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (kgate.output += chunk));
  const deadline = Date.now() + 30_000;
  for (;;) {
    assert.equal(child.exitCode, null, `kgate exited early:\n${kgate.output}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/nothing-here`);
      await res.arrayBuffer();
      return kgate;
    } catch {
      // Not listening yet.
    }
    assert.ok(Date.now() < deadline, `kgate did not come up:\n${kgate.output}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** GETs until the status is the expected one: a produce is acknowledged before the cache has it. */
async function getUntil(url: string, status: number): Promise<Response> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const res = await fetch(url);
    if (res.status === status || Date.now() > deadline) return res;
    await res.arrayBuffer();
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('http.kafka.avro.json', { timeout: 120_000 }, () => {
  let kgate: Kgate;
  const url = (path: string): string => `http://127.0.0.1:${kgate.port}${path}`;
  const post = (path: string, body: string | Buffer, headers: Record<string, string>): Promise<Response> =>
    fetch(url(path), { method: 'POST', headers, body });

  before(async () => {
    // The README's first step: register the schema of items-snapshots-value.
    const res = await fetch(`${registryUrl}/subjects/items-snapshots-value/versions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ schema: EVENT_SCHEMA, schemaType: 'AVRO' }),
    });
    assert.deepEqual(await res.json(), { id: 1 });
    kgate = await startConfig('http.kafka.avro.json.yaml');
  });

  it('stores a valid JSON body as Avro with the wire header, and answers GET with JSON', async () => {
    const res = await post('/items', '{"id": "123","status": "OK"}', {
      'idempotency-key': '1',
      'content-type': 'application/json',
    });
    assert.equal(res.status, 204, await res.text());
    const stored = await kcatValue('items-snapshots', 0);
    assert.deepEqual([...stored.subarray(0, 5)], [0, 0, 0, 0, 1], 'magic byte 0, schema id 1');
    assert.deepEqual({ ...(EVENT.fromBuffer(stored.subarray(5)) as object) }, { id: '123', status: 'OK' });
    const got = await getUntil(url('/items/1'), 200);
    assert.equal(got.status, 200);
    assert.equal(got.headers.get('content-type'), 'application/json');
    assert.equal(await got.text(), '{"id":"123","status":"OK"}');
  });

  it('refuses an invalid body with 400 naming the field and the schema, and stores nothing', async () => {
    const res = await post('/items', '{"id": 123,"status": "OK"}', {
      'idempotency-key': '2',
      'content-type': 'application/json',
    });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: { code?: string; message: string } };
    assert.match(
      JSON.stringify(body),
      /field \/id does not fit schema my_catalog\/items-snapshots-value: must be string/,
    );
    assert.equal((await fetch(url('/items/2'))).status, 404);
    // Nothing reached Kafka: the topic's next record is the next valid one.
    const next = await post('/items', '{"id": "456","status": "OK"}', {
      'idempotency-key': '3',
      'content-type': 'application/json',
    });
    assert.equal(next.status, 204);
    assert.deepEqual(
      { ...(EVENT.fromBuffer((await kcatValue('items-snapshots', 1)).subarray(5)) as object) },
      {
        id: '456',
        status: 'OK',
      },
    );
  });

  it('reads as JSON what another client wrote in the wire format, and skips what does not decode', async () => {
    const framed = Buffer.concat([
      Buffer.from([0, 0, 0, 0, 1]),
      EVENT.toBuffer({ id: 'k', status: 'from kcat' }),
    ]);
    await kcatProduce('items-snapshots', 'k', framed);
    await kcatProduce('items-snapshots', 'bad', Buffer.from('not avro at all'));
    const got = await getUntil(url('/items/k'), 200);
    assert.equal(await got.text(), '{"id":"k","status":"from kcat"}');
    const merged = await getUntil(url('/items'), 200);
    const items = (await merged.json()) as unknown[];
    assert.deepEqual(items, [
      { id: '123', status: 'OK' },
      { id: '456', status: 'OK' },
      { id: 'k', status: 'from kcat' },
    ]);
    assert.equal((await fetch(url('/items/bad'))).status, 404);
    // The warning reaches this process through kgate's stdout pipe, after the answers above.
    await until(
      'the skipped record logged',
      () => /records skipped for JSON readers/.test(kgate.output),
      10_000,
    );
  });

  it('options.requests: /events takes framed Avro only, with its content type', async () => {
    const framed = Buffer.concat([Buffer.from([0, 0, 0, 0, 1]), EVENT.toBuffer({ id: 'e', status: 'OK' })]);
    const ok = await post('/events', framed, {
      'content-type': 'application/avro-binary',
      'idempotency-key': 'e1',
    });
    assert.equal(ok.status, 204, await ok.text());
    assert.deepEqual(await kcatValue('events', 0), framed);
    const wrongType = await post('/events', framed, { 'content-type': 'application/json' });
    assert.equal(wrongType.status, 400);
    assert.match(
      await wrongType.text(),
      /takes content-type application\/avro-binary, not application\/json/,
    );
    const unframed = await post('/events', EVENT.toBuffer({ id: 'e', status: 'OK' }), {
      'content-type': 'application/avro-binary',
    });
    assert.equal(unframed.status, 400);
    const garbage = await post('/events', Buffer.from([0, 0, 0, 0, 1, 0xff]), {
      'content-type': 'application/avro-binary',
    });
    assert.equal(garbage.status, 400);
  });
});

describe('http.kafka.proto.json', { timeout: 60_000 }, () => {
  let kgate: Kgate;
  const url = (path: string): string => `http://127.0.0.1:${kgate.port}${path}`;

  before(async () => {
    kgate = await startConfig('http.kafka.proto.json.yaml');
  });

  it('encodes a valid JSON body as the protobuf message, and refuses an unknown field with 400', async () => {
    const ok = await fetch(url('/requests'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'r1' },
      body: '{\n    "message": "hello message",\n    "count": 10\n}',
    });
    assert.equal(ok.status, 204, await ok.text());
    const type = protobuf.parse(REQUEST_PROTO).root.lookupType('Request');
    const stored = await kcatValue('my-requests', 0);
    assert.deepEqual(type.toObject(type.decode(stored)), { message: 'hello message', count: 10 });
    const bad = await fetch(url('/requests'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'r2' },
      body: '{\n    "message": "hello world",\n    "count": 10,\n    "invalid": "field"\n}',
    });
    assert.equal(bad.status, 400);
    assert.match(await bad.text(), /field \/invalid .*host_filesystem\/my_proto_subject/);
    const got = await getUntil(url('/requests/r1'), 200);
    assert.deepEqual(await got.json(), { message: 'hello message', count: 10 });
    assert.equal((await fetch(url('/requests/r2'))).status, 404);
  });
});

describe('http.kafka.proto.oneway', { timeout: 60_000 }, () => {
  let kgate: Kgate;
  const url = (path: string): string => `http://127.0.0.1:${kgate.port}${path}`;
  const encode = (proto: string, value: Record<string, unknown>): Buffer => {
    const type = protobuf.parse(proto).root.lookupType('Request');
    return Buffer.from(type.encode(type.fromObject(value)).finish());
  };
  const post = (body: Buffer): Promise<Response> =>
    fetch(url('/requests'), { method: 'POST', headers: { 'content-type': 'application/protobuf' }, body });

  before(async () => {
    kgate = await startConfig('http.kafka.proto.oneway.yaml');
  });

  it('stores a protobuf body of the right message as it came, and refuses the three wrong ones', async () => {
    const good = encode(REQUEST_PROTO, { message: 'hello world', count: 10 });
    const ok = await post(good);
    assert.equal(ok.status, 204, await ok.text());
    assert.deepEqual(await kcatValue('my-oneway-requests', 0), good);
    const badType = encode(REQUEST_PROTO.replace('int32 count', 'string count'), {
      message: 'hello bad type',
      count: 'ten',
    });
    const extra = encode(REQUEST_PROTO.replace('}', '  string extra = 3;\n}'), {
      message: 'hello extra field',
      count: 10,
      extra: 'field',
    });
    const wrongOrder = encode(
      'syntax = "proto3";\nmessage Request {\n  int32 count = 1;\n  string message = 2;\n}\n',
      {
        message: 'hello wrong order',
        count: 10,
      },
    );
    for (const body of [badType, extra, wrongOrder]) {
      const res = await post(body);
      assert.equal(res.status, 400, await res.text());
    }
    const next = await post(encode(REQUEST_PROTO, { message: 'again', count: 11 }));
    assert.equal(next.status, 204);
    assert.deepEqual(
      await kcatValue('my-oneway-requests', 1),
      encode(REQUEST_PROTO, { message: 'again', count: 11 }),
    );
  });
});

describe('event streams of an Avro topic, with transforms at ingest', { timeout: 60_000 }, () => {
  let kgate: Kgate;
  const url = (path: string): string => `http://127.0.0.1:${kgate.port}${path}`;
  const ORDER = avro.Type.forSchema({
    type: 'record',
    name: 'Order',
    fields: [
      { name: 'id', type: 'string' },
      { name: 'status', type: 'string' },
    ],
  });

  before(async () => {
    kgate = await startConfig('models.sse.transforms.yaml');
  });

  it('streams JSON events, and finds orders by the key and header extracted from their values', async () => {
    const events = await openEventStream(kgate.port, '/events/orders');
    try {
      for (const [key, body] of [
        ['p1', '{"id":"o-1","status":"paid"}'],
        ['p2', '{"id":"o-2","status":"new"}'],
      ] as const) {
        const res = await fetch(url('/orders'), {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': key },
          body,
        });
        assert.equal(res.status, 204, await res.text());
      }
      // Written by another client, Avro without a header (an inline catalog's values have none).
      await kcatProduce('orders', 'p3', ORDER.toBuffer({ id: 'o-3', status: 'paid' }));
      const got = await events.waitFor(3);
      assert.deepEqual(
        got.map((event) => JSON.parse(event.data) as unknown),
        [
          { id: 'o-1', status: 'paid' },
          { id: 'o-2', status: 'new' },
          { id: 'o-3', status: 'paid' },
        ],
      );
    } finally {
      events.close();
    }
    // Kafka keeps the produced key; the cache holds the extracted one.
    const paid = await getUntil(url('/orders/status/paid'), 200);
    assert.deepEqual(await paid.json(), [
      { id: 'o-1', status: 'paid' },
      { id: 'o-3', status: 'paid' },
    ]);
    const one = await getUntil(url('/orders/o-2'), 200);
    assert.deepEqual(await one.json(), { id: 'o-2', status: 'new' });
    assert.equal((await fetch(url('/orders/p2'))).status, 404);
  });
});
