import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { startKafka, type KafkaCluster } from '../../src/embedded/kafka/index.ts';
import { until } from '../support/until.ts';
import { startExample, type ZillaExample } from './support.ts';

// Zilla's http.kafka.sync, http.kafka.async and http.kafka.oneway examples on one broker, each on
// topics created afresh as its compose stack does, replaying the README's requests byte for byte
// where they are curl's (its request headers go into the produced record, and the correlation id
// is derived from them).

const run = promisify(execFile);
const ITEM = '5cf7a1d5-3772-49ef-86e7-ba6f2c7d7d07';
const GREETING = '{"greeting":"Hello, world"}';

let kafka: KafkaCluster;
let dir: string;

before(async () => {
  kafka = await startKafka();
  dir = await mkdtemp(join(tmpdir(), 'kgate-zilla-http-kafka-produce-'));
});

after(async () => {
  await kafka?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

const bootstrap = (): string => kafka.bootstrap.split(',')[0] ?? '';

async function freshTopics(...topics: string[]): Promise<void> {
  for (const topic of topics) {
    await kafka.deleteTopic(topic).catch(() => undefined);
    await kafka.createTopic(topic, { partitions: 1 });
  }
}

async function start(example: string): Promise<ZillaExample> {
  return startExample(example, { KAFKA_BOOTSTRAP_SERVER: bootstrap() }, join(dir, example), 'tcp');
}

interface KafkaRecord {
  readonly key: string | null;
  readonly payload: string | null;
  /** Names and values in turn, as kcat -J gives them; absent when the record has none. */
  readonly headers?: readonly string[];
}

/** Every record of `topic` so far, read by kcat: a client kgate did not write. */
async function records(topic: string): Promise<KafkaRecord[]> {
  const { stdout } = await run('kcat', [
    '-C',
    '-b',
    bootstrap(),
    '-t',
    topic,
    '-o',
    'beginning',
    '-e',
    '-q',
    '-J',
  ]);
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as KafkaRecord);
}

/** `request` as curl writes it, on a connection of its own; the answer as it came. */
async function curl(
  port: number,
  request: string,
): Promise<{ status: number; headers: Map<string, string>; body: string }> {
  const socket = connect(port, '127.0.0.1');
  let text = '';
  socket.setEncoding('latin1').on('data', (chunk: string) => (text += chunk));
  // Written, not ended: a client that half-closes may find its connection closed before the answer.
  socket.write(request);
  await once(socket, 'close');
  const split = text.indexOf('\r\n\r\n');
  const [statusLine = '', ...lines] = text.slice(0, split).split('\r\n');
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body: text.slice(split + 4) };
}

/** A curl request line and headers, as the READMEs show them, with the body. */
function curlRequest(method: string, path: string, headers: readonly string[], body = ''): string {
  const length = body === '' ? [] : [`Content-Length: ${Buffer.byteLength(body)}`];
  // Connection: close lets the answer end the connection; Zilla and kgate pass neither it nor
  // Content-Length on to Kafka, so the record and its correlation id are those curl's would give.
  return [`${method} ${path} HTTP/1.1`, ...headers, ...length, 'Connection: close', '', body].join('\r\n');
}

describe('http.kafka.sync', () => {
  let kgate: ZillaExample;

  before(async () => {
    await freshTopics('items-requests', 'items-responses');
    kgate = await start('http.kafka.sync');
  });

  after(async () => kgate?.stop());

  const PUT = curlRequest(
    'PUT',
    `/items/${ITEM}`,
    [
      'Host: localhost:7114',
      'User-Agent: curl/7.86.0',
      'Accept: */*',
      'Idempotency-Key: 1',
      'Content-Type: application/json',
    ],
    GREETING,
  );

  it('waits for the correlated reply, answers it with its headers, and answers it again to the same request', async () => {
    const pending = curl(kgate.port, PUT);
    await until('the request on items-requests', async () => (await records('items-requests')).length === 1);
    const [request] = await records('items-requests');
    assert.ok(request !== undefined);
    assert.equal(request.key, ITEM);
    assert.equal(request.payload, GREETING);
    // The README's headers and correlation id, byte for byte.
    assert.deepEqual(request.headers, [
      ':scheme',
      'http',
      ':method',
      'PUT',
      ':path',
      `/items/${ITEM}`,
      ':authority',
      'localhost:7114',
      'user-agent',
      'curl/7.86.0',
      'accept',
      '*/*',
      'idempotency-key',
      '1',
      'content-type',
      'application/json',
      'zilla:reply-to',
      'items-responses',
      'zilla:correlation-id',
      '1-b664e68dd5c49716688e3ec1c8c68bb6',
    ]);

    const reply = '{"greeting":"Hello, world Thu Sep 19 15:30:48 EDT 2024"}';
    await kafka.produce('items-responses', [
      {
        key: '6cf7a1d5-3772-49ef-86e7-ba6f2c7d7d0',
        value: reply,
        headers: {
          ':status': '200',
          'zilla:correlation-id': '1-b664e68dd5c49716688e3ec1c8c68bb6',
          'x-served-by': 'items-service',
        },
      },
    ]);
    const answer = await pending;
    assert.equal(answer.status, 200);
    assert.equal(answer.headers.get('content-length'), '56');
    assert.equal(answer.body, reply);
    // Every reply header but the correlation id comes back; the reply had no content type.
    assert.equal(answer.headers.get('x-served-by'), 'items-service');
    assert.equal(answer.headers.has('zilla:correlation-id'), false);
    assert.equal(answer.headers.has('content-type'), false);

    // The same request again finds the reply already given, and is not produced again.
    const again = await curl(kgate.port, PUT);
    assert.equal(again.status, 200);
    assert.equal(again.body, reply);
    assert.equal((await records('items-requests')).length, 1);
  });

  it('answers a reply with its :status and content type, with no Prefer: wait bounding the wait', async () => {
    // That the wait has no deadline of its own is proved without a broker
    // (test/unit/http-kafka-replies.test.ts); here the reply a service sends is answered as it is.
    const body = '{"greeting":"late"}';
    const pending = curl(
      kgate.port,
      curlRequest(
        'PUT',
        '/items/late',
        ['Host: localhost:7114', 'Idempotency-Key: late', 'Content-Type: application/json'],
        body,
      ),
    );
    await until('the late request', async () =>
      (await records('items-requests')).some((r) => r.key === 'late'),
    );
    const request = (await records('items-requests')).find((r) => r.key === 'late');
    const at = request?.headers?.indexOf('zilla:correlation-id') ?? -1;
    const cid = request?.headers?.[at + 1] ?? '';
    assert.match(cid, /^late-[0-9a-f]{32}$/);
    await kafka.produce('items-responses', [
      {
        value: 'done',
        headers: { ':status': '201', 'zilla:correlation-id': cid, 'content-type': 'text/plain' },
      },
    ]);
    const answer = await pending;
    assert.equal(answer.status, 201);
    assert.equal(answer.headers.get('content-type'), 'text/plain');
    assert.equal(answer.body, 'done');
  });
});

describe('http.kafka.async', () => {
  let kgate: ZillaExample;

  before(async () => {
    await freshTopics('items-requests', 'items-responses');
    kgate = await start('http.kafka.async');
  });

  after(async () => kgate?.stop());

  it('accepts the request with 202 and its location, 202 again within a wait, then the reply', async () => {
    const accepted = await curl(
      kgate.port,
      curlRequest(
        'PUT',
        `/items/${ITEM}`,
        [
          'Host: localhost:7114',
          'User-Agent: curl/7.79.1',
          'Accept: */*',
          'Idempotency-Key: 1',
          'Content-Type: application/json',
          'Prefer: respond-async',
        ],
        GREETING,
      ),
    );
    assert.equal(accepted.status, 202);
    assert.equal(accepted.headers.get('content-length'), '0');
    assert.equal(accepted.body, '');
    // The correlation id as Zilla derives it from the README's request (Prefer is not passed on).
    const md5 = createHash('md5');
    for (const part of [
      ITEM,
      ...[':scheme', 'http', ':method', 'PUT', ':path', `/items/${ITEM}`, ':authority', 'localhost:7114'],
      ...['user-agent', 'curl/7.79.1', 'accept', '*/*', 'idempotency-key', '1'],
      ...['content-type', 'application/json', 'zilla:reply-to', 'items-responses', GREETING],
    ])
      md5.update(part);
    const cid = `1-${md5.digest('hex')}`;
    const location = `/items/${ITEM};cid=${cid}`;
    assert.equal(accepted.headers.get('location'), location);
    const [request] = await records('items-requests');
    assert.deepEqual(request?.headers?.slice(-4), [
      'zilla:reply-to',
      'items-responses',
      'zilla:correlation-id',
      cid,
    ]);

    const started = Date.now();
    const waited = await fetch(kgate.url(location), { headers: { prefer: 'wait=10' } });
    assert.equal(waited.status, 202);
    assert.equal(waited.headers.get('location'), location);
    assert.equal(waited.headers.get('content-length'), '0');
    await waited.arrayBuffer();
    assert.ok(Date.now() - started >= 9_000, 'held for the wait');

    const ready = fetch(kgate.url(location), { headers: { prefer: 'wait=60' } });
    const reply = '{"greeting":"Hello, world Fri May 13 2022"}';
    await kafka.produce('items-responses', [
      { key: ITEM, value: reply, headers: { ':status': '200', 'zilla:correlation-id': cid } },
    ]);
    const answer = await ready;
    assert.equal(answer.status, 200);
    assert.equal(await answer.text(), reply);
  });
});

describe('http.kafka.oneway', () => {
  let kgate: ZillaExample;

  before(async () => {
    await freshTopics('events');
    kgate = await start('http.kafka.oneway');
  });

  after(async () => kgate?.stop());

  it('answers 204 and produces the event with its content type only', async () => {
    const res = await fetch(kgate.url('/events'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-not-passed': 'on' },
      body: GREETING,
    });
    assert.equal(res.status, 204);
    const [event] = await records('events');
    assert.equal(event?.payload, GREETING);
    assert.deepEqual(event?.headers, ['content-type', 'application/json']);
  });

  it('produces an event without a content type without one', async () => {
    // Bytes, so that fetch adds no content type of its own.
    const res = await fetch(kgate.url('/events'), { method: 'POST', body: Buffer.from('plain') });
    assert.equal(res.status, 204);
    const events = await records('events');
    const plain = events.find((e) => e.payload === 'plain');
    assert.ok(plain !== undefined);
    assert.deepEqual(plain.headers ?? [], []);
  });
});
