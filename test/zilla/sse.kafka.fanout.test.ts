import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startKafka, type KafkaCluster } from '../../src/embedded/kafka/index.ts';
import { until } from '../support/until.ts';
import { startExample, type ZillaExample } from './support.ts';

// Zilla's sse.kafka.fanout example: `/{topic}/{key}/{tag}` streams the topic the path names,
// filtered by key and by a `tag` header, beside a page served from a directory. Its README and
// its CI script subscribe to /events/<symbol>/<exchange> and expect `data:<value>` lines.

let kafka: KafkaCluster;
let dir: string;
let kgate: ZillaExample;

before(async () => {
  kafka = await startKafka();
  await kafka.createTopic('events', { partitions: 1, configs: { 'cleanup.policy': 'compact' } });
  dir = await mkdtemp(join(tmpdir(), 'kgate-zilla-sse-kafka-fanout-'));
  const www = join(dir, 'www');
  await mkdir(www);
  await writeFile(join(www, 'index.html'), '<!doctype html><title>Welcome to Zilla!</title>');
  kgate = await startExample(
    'sse.kafka.fanout',
    { KAFKA_BOOTSTRAP_SERVER: kafka.bootstrap.split(',')[0] ?? '', WWW_DIR: www },
    join(dir, 'cache'),
    '/index.html',
  );
});

after(async () => {
  await kgate?.stop();
  await kafka?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** An event stream as curl -N shows it: the raw text so far. */
async function rawStream(
  path: string,
): Promise<{ res: IncomingMessage; text: () => string; close: () => void }> {
  const req = request(kgate.url(path), { headers: { accept: 'text/event-stream' }, agent: false });
  req.end();
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  let text = '';
  res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  return { res, text: () => text, close: () => req.destroy() };
}

describe('sse.kafka.fanout', () => {
  it('streams the value of the key and tag the path names, framed as Zilla frames it', async () => {
    await kafka.produce('events', [
      { key: '1', value: '{"id":1,"name":"Hello World!"}', headers: { tag: 'abc' } },
    ]);
    const stream = await rawStream('/events/1/abc');
    try {
      assert.equal(stream.res.statusCode, 200);
      assert.match(stream.res.headers['content-type'] ?? '', /^text\/event-stream/);
      await until('the event', () => stream.text().includes('\n\n'), 20_000);
      const data = stream
        .text()
        .split('\n')
        .filter((line) => line.startsWith('data:'));
      assert.deepEqual(data, ['data:{"id":1,"name":"Hello World!"}']);
      assert.match(stream.text(), /^id:\S+\ndata:\{"id":1,"name":"Hello World!"\}\n\n/m);
    } finally {
      stream.close();
    }
  });

  it('keeps the streams of a portfolio apart, each with its own updates as they come', async () => {
    const aapl = await rawStream('/events/AAPL/nasdaq');
    const msft = await rawStream('/events/MSFT/nasdaq');
    try {
      await kafka.produce('events', [
        { key: 'AAPL', value: '{"symbol":"AAPL","price":190.1}', headers: { tag: 'nasdaq' } },
        { key: 'MSFT', value: '{"symbol":"MSFT","price":410.5}', headers: { tag: 'nasdaq' } },
        { key: 'AAPL', value: '{"symbol":"AAPL","price":190.4}', headers: { tag: 'other' } },
        { key: 'AAPL', value: '{"symbol":"AAPL","price":191.2}', headers: { tag: 'nasdaq' } },
      ]);
      const lines = (text: string): string[] => text.split('\n').filter((l) => l.startsWith('data:'));
      await until(
        'both streams',
        () => lines(aapl.text()).length >= 1 && lines(msft.text()).length >= 1,
        20_000,
      );
      await until(
        'the second AAPL update',
        () => lines(aapl.text()).some((l) => l.includes('191.2')),
        20_000,
      );
      // A compacted topic may have dropped the first AAPL value: the stream ends with the latest.
      assert.equal(lines(aapl.text()).at(-1), 'data:{"symbol":"AAPL","price":191.2}');
      assert.ok(
        lines(aapl.text()).every((l) => !l.includes('190.4')),
        'the other tag is filtered out',
      );
      assert.deepEqual(lines(msft.text()), ['data:{"symbol":"MSFT","price":410.5}']);
    } finally {
      aapl.close();
      msft.close();
    }
  });

  it('serves the page beside the streams', async () => {
    const res = await fetch(kgate.url('/index.html'));
    assert.equal(res.status, 200);
    assert.match(await res.text(), /Welcome to Zilla!/);
  });

  it('answers 404 to an event stream no route takes, and to a path that names no topic', async () => {
    // Two segments: no route. Four: `{topic}` takes `events/x` (a parameter spans `/`), no topic name.
    for (const [path, message] of [
      ['/events/AAPL', /no event stream/],
      ['/events/x/AAPL/nasdaq', /names no topic/],
    ] as const) {
      const res = await fetch(kgate.url(path), { headers: { accept: 'text/event-stream' } });
      assert.equal(res.status, 404, path);
      assert.match(((await res.json()) as { message: string }).message, message);
    }
  });
});
