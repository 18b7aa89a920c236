import { strict as assert } from 'node:assert';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startKafka, type KafkaCluster } from '../../src/embedded/kafka/index.ts';
import { openEventStream } from '../support/event-stream.ts';
import { reservePort } from '../support/ports.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const JSON_HEADERS = { 'content-type': 'application/json' };
const run = promisify(execFile);

/** Writes `request` on a new connection and returns everything the server sent until it closed. */
async function rawExchange(port: number, request: string): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  let text = '';
  socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  socket.end(request);
  await once(socket, 'close');
  return text;
}

/** A `kgate start` child process on one example file, with its port and everything it printed. */
interface Kgate {
  readonly port: number;
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  output: string;
}

let kafka: KafkaCluster;
let cacheDir: string;
const started: Kgate[] = [];

before(async () => {
  kafka = await startKafka();
  // One partition each, so that the merged document's order is the produce order.
  await kafka.createTopic('items-snapshots', { partitions: 1, configs: { 'cleanup.policy': 'compact' } });
  await kafka.createTopic('items-requests', { partitions: 1 });
  await kafka.createTopic('items-responses', { partitions: 1 });
  await kafka.createTopic('items', { partitions: 3, configs: { 'cleanup.policy': 'compact' } });
  await kafka.produce('items-snapshots', [
    { key: '1', value: '{"id":1,"name":"apple"}', headers: JSON_HEADERS },
    { key: '2', value: '{"id":2,"name":"pear"}', headers: JSON_HEADERS },
  ]);
  cacheDir = await mkdtemp(join(tmpdir(), 'kgate-e2e-examples-'));
});

after(async () => {
  for (const kgate of started) if (kgate.child.exitCode === null) kgate.child.kill('SIGKILL');
  await kafka?.stop();
  if (cacheDir !== undefined) await rm(cacheDir, { recursive: true, force: true });
});

/** Starts `kgate start -c examples/<file>` and waits until `ready` answers 200. */
async function startExample(file: string, portVariable: string, ready: string): Promise<Kgate> {
  const port = await reservePort();
  const env: Record<string, string> = { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '' };
  env['KAFKA_BOOTSTRAP_SERVER'] = kafka.bootstrap.split(',')[0] ?? '';
  env[portVariable] = String(port);
  env['KGATE_LOG_LEVEL'] = 'warn';
  const child = spawn(
    process.execPath,
    [
      join(ROOT, 'bin', 'kgate.js'),
      'start',
      '-c',
      join(ROOT, 'examples', file),
      '--cache-dir',
      join(cacheDir, file),
    ],
    { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const kgate: Kgate = {
    port,
    child,
    exited: new Promise((resolve) => child.on('close', (code) => resolve(code))),
    output: '',
  };
  started.push(kgate);
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (kgate.output += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (kgate.output += chunk));
  const deadline = Date.now() + 30_000;
  for (;;) {
    assert.equal(child.exitCode, null, `kgate exited early:\n${kgate.output}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}${ready}`);
      await res.arrayBuffer();
      if (res.status === 200) return kgate;
    } catch {
      // Not listening yet.
    }
    assert.ok(Date.now() < deadline, `kgate did not come up:\n${kgate.output}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** The headers of every record on `topic` so far, as kcat (librdkafka) reads them back. */
async function kcatHeaders(topic: string): Promise<Map<string, string>[]> {
  const { stdout } = await run('kcat', [
    '-C',
    '-b',
    kafka.bootstrap.split(',')[0] ?? '',
    '-t',
    topic,
    '-o',
    'beginning',
    '-e',
    '-q',
    '-f',
    '%h\n',
  ]);
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => new Map(line.split(',').map((pair) => pair.split('=', 2) as [string, string])));
}

describe('kgate start -c examples/http-kafka-request-reply.yaml', { timeout: 90_000 }, () => {
  let kgate: Kgate;
  const url = (path: string): string => `http://127.0.0.1:${kgate.port}${path}`;

  /** GETs until the status is the expected one: a produce is acknowledged before the cache has it. */
  async function getUntil(path: string, status: number): Promise<Response> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const res = await fetch(url(path));
      if (res.status === status || Date.now() > deadline) return res;
      await res.arrayBuffer();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  before(async () => {
    kgate = await startExample('http-kafka-request-reply.yaml', 'KGATE_HTTP_PORT', '/items');
  });

  it('serves the snapshot, single items with ETags, and writes', async () => {
    const all = await fetch(url('/items'));
    assert.equal(all.status, 200);
    assert.equal(all.headers.get('content-type'), 'application/json');
    assert.equal(await all.text(), '[{"id":1,"name":"apple"},{"id":2,"name":"pear"}]');

    const one = await fetch(url('/items/1'));
    assert.equal(one.status, 200);
    assert.equal(one.headers.get('content-type'), 'application/json');
    assert.equal(await one.text(), '{"id":1,"name":"apple"}');
    const etag = one.headers.get('etag');
    assert.ok(etag !== null);
    const unchanged = await fetch(url('/items/1'), { headers: { 'if-none-match': etag } });
    assert.equal(unchanged.status, 304);
    assert.equal(await unchanged.text(), '');

    const put = await fetch(url('/items/3'), {
      method: 'PUT',
      headers: JSON_HEADERS,
      body: '{"id":3,"name":"plum"}',
    });
    assert.equal(put.status, 204);
    assert.equal(await put.text(), '');
    const plum = await getUntil('/items/3', 200);
    assert.equal(plum.status, 200);
    assert.equal(await plum.text(), '{"id":3,"name":"plum"}');
    const merged = await fetch(url('/items'));
    assert.equal(
      await merged.text(),
      '[{"id":1,"name":"apple"},{"id":2,"name":"pear"},{"id":3,"name":"plum"}]',
    );

    const del = await fetch(url('/items/3'), { method: 'DELETE' });
    assert.equal(del.status, 204);
    await del.text();
    const gone = await getUntil('/items/3', 404);
    assert.equal(gone.status, 404);
    await gone.text();
    const remaining = await fetch(url('/items'));
    assert.equal(await remaining.text(), '[{"id":1,"name":"apple"},{"id":2,"name":"pear"}]');
  });

  it('with Prefer: wait, answers as soon as kcat produces the awaited change', async () => {
    const absent = await fetch(url('/items/4'));
    assert.equal(absent.status, 404);
    await absent.text();
    const before = await fetch(url('/items'));
    const listTag = before.headers.get('etag');
    assert.ok(listTag !== null);
    await before.text();

    const began = Date.now();
    const item = fetch(url('/items/4'), { headers: { prefer: 'wait=20' } });
    const list = fetch(url('/items'), { headers: { 'if-none-match': listTag, prefer: 'wait=20' } });
    await new Promise((resolve) => setTimeout(resolve, 500));
    await kafka.produce('items-snapshots', [
      { key: '4', value: '{"id":4,"name":"fig"}', headers: JSON_HEADERS },
    ]);

    const one = await item;
    assert.equal(one.status, 200);
    assert.equal(one.headers.get('content-type'), 'application/json');
    assert.equal(await one.text(), '{"id":4,"name":"fig"}');
    const all = await list;
    assert.equal(all.status, 200);
    assert.equal(await all.text(), '[{"id":1,"name":"apple"},{"id":2,"name":"pear"},{"id":4,"name":"fig"}]');
    assert.notEqual(all.headers.get('etag'), listTag);
    // Both were woken by the record, not by the end of their 20 s wait.
    assert.ok(Date.now() - began < 15_000, `answered after ${Date.now() - began} ms`);
  });

  it('answers a synchronous request with the reply a service sends through Kafka', async () => {
    const pending = fetch(url('/requests'), {
      method: 'POST',
      headers: { 'content-type': 'text/plain', prefer: 'wait=30' },
      body: 'sync ping',
    });
    // The service: kcat reads the request's correlation id and reply topic, kcat answers there.
    let request: Map<string, string> | undefined;
    const deadline = Date.now() + 15_000;
    while (request === undefined) {
      const requests = await kcatHeaders('items-requests');
      request = requests.find((headers) => headers.get('content-type') === 'text/plain' && headers.size >= 3);
      // Requests from other tests are answered already; the one without a reply is this one.
      const replied = new Set(
        (await kcatHeaders('items-responses')).map((h) => h.get('zilla:correlation-id')),
      );
      if (request !== undefined && replied.has(request.get('zilla:correlation-id'))) request = undefined;
      assert.ok(Date.now() < deadline, 'the request did not reach items-requests');
      if (request === undefined) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.equal(request.get('zilla:reply-to'), 'items-responses');
    const cid = request.get('zilla:correlation-id');
    // Zilla's correlation id: the idempotency key (a fresh UUID here), `-`, the request's MD5.
    assert.match(cid ?? '', /^[0-9a-f-]{36}-[0-9a-f]{32}$/);
    await kafka.produce('items-responses', [
      {
        value: '{"pong":true}',
        headers: { 'zilla:correlation-id': cid ?? '', 'content-type': 'application/json' },
      },
    ]);
    const reply = await pending;
    assert.equal(reply.status, 200);
    assert.equal(reply.headers.get('content-type'), 'application/json');
    assert.equal(await reply.text(), '{"pong":true}');
  });

  it('round-trips an async request and its reply through Kafka', async () => {
    const accepted = await fetch(url('/requests'), {
      method: 'POST',
      headers: { prefer: 'respond-async', 'content-type': 'text/plain' },
      body: 'ping',
    });
    assert.equal(accepted.status, 202);
    assert.equal(await accepted.text(), '');
    const location = accepted.headers.get('location') ?? '';
    const cid = /^\/requests;cid=([0-9a-f-]{36}-[0-9a-f]{32})$/.exec(location)?.[1];
    assert.ok(cid !== undefined, location);

    const waiting = await fetch(url(location));
    assert.equal(waiting.status, 202);
    assert.equal(waiting.headers.get('location'), location);
    await waiting.text();

    // The service behind Kafka answers on the reply topic with the request's correlation id.
    await kafka.produce('items-responses', [
      {
        value: 'pong',
        headers: { 'zilla:correlation-id': cid, 'content-type': 'text/plain', ':status': '201' },
      },
    ]);
    const reply = await fetch(url(location), { headers: { prefer: 'wait=20' } });
    assert.equal(reply.status, 201);
    assert.equal(reply.headers.get('content-type'), 'text/plain');
    assert.equal(await reply.text(), 'pong');
  });

  it('answers bad requests clearly, and other clients go on undisturbed', async () => {
    // A client on another connection GETs all along; none of the bad requests may disturb it.
    let watching = true;
    const watcher = (async () => {
      let answered = 0;
      while (watching) {
        const res = await fetch(url('/items/1'));
        assert.equal(res.status, 200);
        assert.equal(await res.text(), '{"id":1,"name":"apple"}');
        answered++;
      }
      return answered;
    })();
    // Marked handled now; awaited below, where its failure fails the test.
    watcher.catch(() => undefined);
    try {
      const unknown = await fetch(url('/nowhere'));
      assert.equal(unknown.status, 404);
      assert.equal(unknown.headers.get('content-type'), 'application/json');
      assert.deepEqual(await unknown.json(), {
        status: 404,
        error: 'Not Found',
        message: 'no route for GET /nowhere',
      });
      // `/items/{id}` takes `/items/1/parts` as Zilla does (a parameter spans `/`): no such key.
      const unrouted = await fetch(url('/items/1/parts'));
      assert.equal(unrouted.status, 404);
      assert.deepEqual(await unrouted.json(), {
        status: 404,
        error: 'Not Found',
        message: 'no message in topic items-snapshots matches',
      });

      const wrongMethod = await fetch(url('/items'), { method: 'PUT', body: '{}' });
      assert.equal(wrongMethod.status, 405);
      assert.equal(wrongMethod.headers.get('allow'), 'GET, HEAD');
      assert.deepEqual(await wrongMethod.json(), {
        status: 405,
        error: 'Method Not Allowed',
        message: '/items takes GET, HEAD, not PUT',
      });

      const wrongItemMethod = await fetch(url('/items/1'), { method: 'POST', body: '{}' });
      assert.equal(wrongItemMethod.status, 405);
      assert.equal(wrongItemMethod.headers.get('allow'), 'GET, HEAD, PUT, DELETE');
      await wrongItemMethod.text();
      const head = await fetch(url('/items/1'), { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('content-length'), String('{"id":1,"name":"apple"}'.length));
      assert.equal(await head.text(), '');

      const oversize = await fetch(url('/items/huge'), {
        method: 'PUT',
        body: Buffer.alloc(2 * 1024 * 1024, 0x61),
      });
      assert.equal(oversize.status, 413);
      // The topic's own limit (Kafka's default, 1 MiB plus 12 bytes), checked before the body is read.
      const refused = (await oversize.json()) as { status: number; error: string; message: string };
      assert.deepEqual({ ...refused, message: '' }, { status: 413, error: 'Payload Too Large', message: '' });
      assert.match(
        refused.message,
        /^message for topic items-snapshots needs at least 2097\d{3} bytes, more than its max\.message\.bytes \(1048588\)$/,
      );

      const malformed = await rawExchange(
        kgate.port,
        'GET /items/1 HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n',
      );
      assert.match(malformed, /^HTTP\/1\.1 400 Bad Request\r\n/);

      // Announces 1,000 bytes, sends 10, leaves: nothing is produced for it.
      const leaving = connect(kgate.port, '127.0.0.1');
      await once(leaving, 'connect');
      leaving.write(
        'PUT /items/half HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"id":"ha',
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
      leaving.destroy();
    } finally {
      watching = false;
    }
    assert.ok((await watcher) > 0);
    const half = await fetch(url('/items/half'), { headers: { prefer: 'wait=1' } });
    assert.equal(half.status, 404);
    await half.text();
    const huge = await fetch(url('/items/huge'));
    assert.equal(huge.status, 404);
    await huge.text();
    assert.equal(kgate.child.exitCode, null);
  });

  it('exits 0 on SIGTERM', async () => {
    kgate.child.kill('SIGTERM');
    assert.equal(await kgate.exited, 0, kgate.output);
  });
});

describe('kgate start -c examples/demo.yaml', { timeout: 90_000 }, () => {
  let kgate: Kgate;

  before(async () => {
    kgate = await startExample('demo.yaml', 'KGATE_DEMO_PORT', '/items');
  });

  it('fans SSE out to many clients, and each resumes from Last-Event-ID without loss or duplicates', async () => {
    const first = ['apple', 'pear', 'plum'];
    await kafka.produce(
      'items',
      first.map((name) => ({ key: name, value: JSON.stringify({ name }) })),
    );
    const clients = await Promise.all(
      Array.from({ length: 20 }, () => openEventStream(kgate.port, '/events/items')),
    );
    const seen = await Promise.all(clients.map((client) => client.waitFor(3)));
    for (const events of seen) {
      // Three partitions: order holds per key, not across keys.
      assert.deepEqual(
        events.map((e) => e.data).sort(),
        first.map((name) => JSON.stringify({ name })).sort(),
      );
      for (const event of events) {
        const [key] = JSON.parse(event.id ?? '[]') as string[];
        assert.equal(
          Buffer.from(key ?? '', 'base64').toString(),
          (JSON.parse(event.data) as { name: string }).name,
        );
      }
    }
    const lastIds = seen.map((events) => events.at(-1)?.id ?? '');
    for (const client of clients) client.close();

    // While every client is away: two changes and a delete.
    await kafka.produce('items', [
      { key: 'kiwi', value: '{"name":"kiwi"}' },
      { key: 'apple', value: '{"name":"apple","price":3}' },
      { key: 'pear', value: null },
    ]);
    const resumed = await Promise.all(lastIds.map((id) => openEventStream(kgate.port, '/events/items', id)));
    for (const client of resumed) {
      const events = await client.waitFor(3);
      assert.deepEqual(events.map((e) => `${e.type ?? 'message'} ${e.data}`).sort(), [
        'delete pear',
        'message {"name":"apple","price":3}',
        'message {"name":"kiwi"}',
      ]);
    }
    // Nothing from before each resume point comes again.
    await new Promise((resolve) => setTimeout(resolve, 500));
    for (const client of resumed) assert.equal(client.events.length, 3);
    for (const client of resumed) client.close();
  });

  it('exits 0 on SIGTERM', async () => {
    kgate.child.kill('SIGTERM');
    assert.equal(await kgate.exited, 0, kgate.output);
  });
});
