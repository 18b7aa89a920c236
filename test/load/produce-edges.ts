// What a client sees at the edges of the http-kafka produce, fetch and reply paths, through a
// real broker: the largest body a topic's max.message.bytes lets through (against what the
// broker itself takes), the Content-Type a GET answers for values stored with text/html,
// image/svg+xml or a CR/LF in their content-type header, and the answer to a reply whose
// :status is 101 or 204. Not part of `npm test`: it starts a broker and stops by itself.
//
//   node test/load/produce-edges.ts
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeBatch } from '../../src/bindings/kafka/client/protocol/records.ts';
import { CacheClientBinding, type CacheMessage } from '../../src/bindings/kafka/cache_client/index.ts';
import { startKafka } from '../../src/embedded/kafka/index.ts';
import { startYamlEngine } from '../support/yaml-engine.ts';

const LIMIT = 10_000;
const deadline = setTimeout(() => {
  console.error('deadline passed; exiting');
  process.exit(2);
}, 240_000);
deadline.unref();

const kafka = await startKafka();
const stateDir = await mkdtemp(join(tmpdir(), 'kgate-produce-edges-'));
try {
  await kafka.createTopic('bounded', { partitions: 1, configs: { 'max.message.bytes': String(LIMIT) } });
  await kafka.createTopic('pages', { partitions: 1, configs: { 'cleanup.policy': 'compact' } });
  await kafka.createTopic('requests', { partitions: 1 });
  await kafka.createTopic('replies', { partitions: 1 });
  const yaml = `
name: produce-edges
bindings:
  tcp: { type: tcp, kind: server, options: { host: 127.0.0.1, port: 0 }, exit: http }
  http: { type: http, kind: server, exit: rest }
  rest:
    type: http-kafka
    kind: proxy
    routes:
      - when: [{ method: PUT, path: "/bounded/{id}" }]
        exit: north
        with: { capability: produce, topic: bounded, key: "\${params.id}" }
      - when: [{ method: PUT, path: "/pages/{id}" }]
        exit: north
        with: { capability: produce, topic: pages, key: "\${params.id}" }
      - when: [{ method: GET, path: "/pages/{id}" }]
        exit: north
        with: { capability: fetch, topic: pages, filters: [{ key: "\${params.id}" }] }
      - when: [{ method: POST, path: /ask }]
        exit: north
        with: { capability: produce, topic: requests, reply-to: replies }
  north: { type: kafka, kind: cache_client, exit: cache }
  cache: { type: kafka, kind: cache_server, exit: south }
  south: { type: kafka, kind: client, options: { servers: ["${kafka.bootstrap}"] } }
`;
  const { engine, port } = await startYamlEngine(yaml, 'produce-edges.yaml', stateDir);
  const url = (path: string): string => `http://127.0.0.1:${port}${path}`;

  // 1. The 413 boundary.
  const contentType = 'application/octet-stream';
  const put = async (size: number): Promise<number> => {
    const res = await fetch(url('/bounded/item-1'), {
      method: 'PUT',
      headers: { 'content-type': contentType },
      body: randomBytes(size),
    });
    await res.arrayBuffer();
    return res.status;
  };
  let low = 0;
  let high = LIMIT;
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if ((await put(mid)) === 204) low = mid;
    else high = mid - 1;
  }
  const batchOf = (size: number): number =>
    encodeBatch([{ key: 'item-1', value: Buffer.alloc(size), headers: { 'content-type': contentType } }], {
      producerId: 0n,
      producerEpoch: 0,
      baseSequence: 0,
      compression: 'none',
      now: 0,
    }).length;
  let brokerLargest = LIMIT;
  while (batchOf(brokerLargest) > LIMIT) brokerLargest--;
  // The broker's own answer for that size and the next, produced by kcat rather than kgate.
  const byKcat = async (size: number): Promise<string> => {
    try {
      await kafka.produce('bounded', [
        { key: 'item-1', value: randomBytes(size), headers: { 'content-type': contentType } },
      ]);
      return 'accepted';
    } catch (error) {
      return `refused (${error instanceof Error ? error.message.split('\n')[0] : String(error)})`;
    }
  };
  const boundary = {
    maxMessageBytes: LIMIT,
    key: 'item-1',
    headers: { 'content-type': contentType },
    largestBodyKgateTakes: low,
    largestValueTheBrokerTakes: brokerLargest,
    brokerWithThatValue: await byKcat(brokerLargest),
    brokerWithOneByteMore: await byKcat(brokerLargest + 1),
  };

  // 2. Stored content types echoed by GET.
  const store = async (id: string, type: string): Promise<void> => {
    const res = await fetch(url(`/pages/${id}`), {
      method: 'PUT',
      headers: { 'content-type': type },
      body: `<script>alert(document.domain)</script>`,
    });
    await res.arrayBuffer();
  };
  await store('html', 'text/html; charset=utf-8');
  await store('svg', 'image/svg+xml');
  await kafka.produce('pages', [
    { key: 'crlf', value: 'hello', headers: { 'content-type': 'text/plain\r\nX-Injected: yes' } },
  ]);
  const served: Record<string, unknown> = {};
  for (const id of ['html', 'svg', 'crlf']) {
    const answer = await raw(port, `GET /pages/${id} HTTP/1.1\r\nHost: kgate\r\nConnection: close\r\n\r\n`);
    const head = answer.split('\r\n\r\n')[0] ?? '';
    served[id] = {
      statusLine: head.split('\r\n')[0],
      contentType: /\r\ncontent-type: ([^\r]*)/i.exec(head)?.[1] ?? null,
      nosniff: /\r\nx-content-type-options: nosniff/i.test(head),
      injectedHeader: /\r\nx-injected:/i.test(head),
      stackInBody: /\bat [\w.]+ \(/.test(answer),
    };
  }

  // 3. Replies whose :status is not a final one, or bodiless.
  const north = engine.binding('north');
  if (!(north instanceof CacheClientBinding)) throw new Error('north is not a cache_client');
  const requests = await north.open('requests', { defaultOffset: 'historical' });
  const responder = (async () => {
    for await (const message of requests) await reply(message);
  })();
  async function reply(message: CacheMessage): Promise<void> {
    const header = (name: string): string | undefined =>
      message.headers.find((h) => h.name.toString() === name)?.value?.toString();
    const cid = header('zilla:correlation-id');
    if (cid === undefined) return;
    await kafka.produce('replies', [
      {
        value: 'reply body',
        headers: { 'zilla:correlation-id': cid, ':status': message.value?.toString() ?? '200' },
      },
    ]);
  }
  const replies: Record<string, unknown> = {};
  for (const status of ['101', '204']) {
    // Two requests on one connection: what the client reads for the first, and whether the
    // second is still answered.
    const ask = (body: string): string =>
      `POST /ask HTTP/1.1\r\nHost: kgate\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    const answer = await raw(port, ask(status), ask('200'), 10_000);
    replies[status] = {
      statusLines: answer.match(/HTTP\/1\.1 \d{3} [^\r]*/g) ?? [],
      firstHead: answer.split('\r\n\r\n')[0],
    };
  }
  requests.close();
  await responder.catch(() => undefined);

  console.log(JSON.stringify({ boundary, served, replies }, null, 2));
  await engine.stop(5_000);
} finally {
  await kafka.stop();
  await rm(stateDir, { recursive: true, force: true });
  clearTimeout(deadline);
}

/** Sends `first` on a new connection, `second` (if any) a second later, and reads for `ms`. */
async function raw(port: number, first: string, second?: string, ms = 1_500): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  socket.write(first);
  if (second !== undefined) setTimeout(() => socket.write(second), 1_000);
  await Promise.race([once(socket, 'close'), new Promise((resolve) => setTimeout(resolve, ms))]);
  socket.destroy();
  return text;
}
