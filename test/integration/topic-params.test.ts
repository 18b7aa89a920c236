import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Admin } from '@platformatic/kafka';
import type { CacheServerBinding } from '../../src/bindings/kafka/cache_server/index.ts';
import { startKafka, type KafkaCluster } from '../../src/embedded/kafka/index.ts';
import type { Engine } from '../../src/engine/engine.ts';
import { openEventStream } from '../support/event-stream.ts';
import { until } from '../support/until.ts';
import { startYamlEngine } from '../support/yaml-engine.ts';

// Topics named by request paths (`${params.topic}`), against a broker that would create any topic
// a Metadata request lets it: kgate must answer illegal names itself, follow unknown topics only
// while someone asks, bound how many it follows, and never have a topic created.

let kafka: KafkaCluster;
let engine: Engine;
let stateDir: string;
let port: number;

before(async () => {
  kafka = await startKafka({ brokerProperties: { 'auto.create.topics.enable': true } });
  for (const topic of ['alpha', 'beta', 'gamma']) await kafka.createTopic(topic);
  stateDir = await mkdtemp(join(tmpdir(), 'kgate-topic-params-it-'));
  const yaml = `
name: topic-params-it
bindings:
  tcp:
    type: tcp
    kind: server
    options: { host: 127.0.0.1, port: 0 }
    exit: http
  http:
    type: http
    kind: server
    routes:
      - when: [{ headers: { ":path": "/streams/*" } }, { headers: { ":path": "/feeds/*" } }]
        exit: sse
    exit: rest
  sse: { type: sse, kind: server, exit: events }
  events:
    type: sse-kafka
    kind: proxy
    routes:
      - when: [{ path: "/streams/{topic}" }]
        exit: north
        with: { topic: "\${params.topic}" }
  rest:
    type: http-kafka
    kind: proxy
    routes:
      - when: [{ method: GET, path: "/topics/{topic}" }]
        exit: north
        with: { capability: fetch, topic: "\${params.topic}", merge: { content-type: application/json } }
      - when: [{ method: POST, path: "/topics/{topic}" }]
        exit: north
        with: { capability: produce, topic: "\${params.topic}", kafka-timeout: 3 }
  north:
    type: kafka
    kind: cache_client
    options: { topics: [{ name: alpha, defaultOffset: historical }] }
    exit: cache
  cache:
    type: kafka
    kind: cache_server
    options: { limits: { requested-topics: 2 } }
    exit: south
  south: { type: kafka, kind: client, options: { servers: ["${kafka.bootstrap}"] } }
`;
  ({ engine, port } = await startYamlEngine(yaml, 'topic-params-it.yaml', stateDir));
});

after(async () => {
  await engine?.stop(5_000);
  await kafka?.stop();
  if (stateDir !== undefined) await rm(stateDir, { recursive: true, force: true });
});

function url(path: string): string {
  return `http://127.0.0.1:${port}${path}`;
}

function cache(): CacheServerBinding {
  return engine.binding('cache') as CacheServerBinding;
}

async function brokerTopics(): Promise<string[]> {
  const admin = new Admin({ clientId: 'topic-params-it', bootstrapBrokers: [kafka.bootstrap] });
  try {
    return await admin.listTopics({ includeInternals: false });
  } finally {
    await admin.close();
  }
}

async function metric(name: string): Promise<number> {
  const text = await engine.metrics.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes('binding="cache"'));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('topics made of path parameters', () => {
  it('streams the topic a path names', async () => {
    await kafka.produce('alpha', [{ key: 'k', value: 'from alpha' }]);
    const stream = await openEventStream(port, '/streams/alpha');
    const [event] = await stream.waitFor(1);
    assert.equal(event?.data, 'from alpha');
    stream.close();
  });

  it('answers 404 at once, asking no broker, for a path that makes an illegal topic name', async () => {
    const followed = cache().followedTopics().length;
    for (const path of ['/streams/bad%20name', '/streams/a%2Fb', `/streams/${'x'.repeat(250)}`]) {
      const res = await fetch(url(path), { headers: { accept: 'text/event-stream' } });
      assert.equal(res.status, 404, path);
      assert.match(((await res.json()) as { message: string }).message, /this path names no topic/);
    }
    const res = await fetch(url('/topics/bad%20name'));
    assert.equal(res.status, 404);
    assert.match(((await res.json()) as { message: string }).message, /this path names no topic/);
    assert.equal(cache().followedTopics().length, followed);
  });

  it('answers 404 to an event stream no sse-kafka route takes, without opening a stream', async () => {
    const res = await fetch(url('/feeds/anything'), { headers: { accept: 'text/event-stream' } });
    assert.equal(res.status, 404);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    assert.match(((await res.json()) as { message: string }).message, /no event stream at \/feeds\/anything/);
  });

  it('stops asking for an unknown topic once its last client has gone, and never has it created', async () => {
    const res = await fetch(url('/streams/ghost'), { headers: { accept: 'text/event-stream' } });
    assert.equal(res.status, 200);
    assert.match(await res.text(), /event:error\ndata:topic ghost: /);
    await until('the cache to let go of ghost', () => !cache().followedTopics().includes('ghost'), 10_000);

    const fetched = await fetch(url('/topics/ghost-fetch'));
    assert.equal(fetched.status, 404);
    assert.match(((await fetched.json()) as { message: string }).message, /ghost-fetch/);
    const produced = await fetch(url('/topics/ghost-produce'), { method: 'POST', body: 'x' });
    assert.ok(produced.status >= 400, `produce to a missing topic answered ${produced.status}`);
    await produced.arrayBuffer();

    const topics = await brokerTopics();
    for (const ghost of ['ghost', 'ghost-fetch', 'ghost-produce']) assert.ok(!topics.includes(ghost), ghost);
    await until(
      'the cache to let go of ghost-fetch',
      () => !cache().followedTopics().includes('ghost-fetch'),
    );
  });

  it('follows at most limits.requested-topics topics for requests, answering 503 past it', async () => {
    const a = await openEventStream(port, '/streams/alpha');
    const b = await openEventStream(port, '/streams/beta');
    try {
      await until('both topics followed', () => cache().followedTopics().length >= 2);
      const refused = await metric('kgate_cache_requested_topics_refused_total');
      const res = await fetch(url('/topics/gamma'));
      assert.equal(res.status, 503);
      assert.ok(res.headers.get('retry-after') !== null);
      assert.match(((await res.json()) as { message: string }).message, /limits\.requested-topics/);
      assert.equal(await metric('kgate_cache_requested_topics_refused_total'), refused + 1);
      assert.equal(await metric('kgate_cache_requested_topics'), 2);
    } finally {
      b.close();
    }
    // beta is no longer held: it makes room for gamma.
    await until('beta released', async () => (await fetch(url('/topics/gamma'))).status === 200, 10_000);
    assert.ok(!cache().followedTopics().includes('beta'));
    assert.ok(cache().followedTopics().includes('alpha'));
    a.close();
  });
});
