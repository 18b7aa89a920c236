import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startKafka, type KafkaCluster } from '../../src/embedded/kafka/index.ts';
import { until } from '../support/until.ts';
import { startExample, type ZillaExample } from './support.ts';

// Zilla's http.kafka.cache and http.kafka.crud examples, one broker for both: each starts on an
// items-snapshots topic created afresh, as its README's compose stack does, and replays the
// README's requests.

const TOPIC = 'items-snapshots';
const ITEM = '5cf7a1d5-3772-49ef-86e7-ba6f2c7d7d07';

let kafka: KafkaCluster;
let dir: string;

async function freshTopic(): Promise<void> {
  await kafka.deleteTopic(TOPIC).catch(() => undefined);
  await kafka.createTopic(TOPIC, { partitions: 1, configs: { 'cleanup.policy': 'compact' } });
}

async function start(example: string): Promise<ZillaExample> {
  return startExample(
    example,
    { KAFKA_BOOTSTRAP_SERVER: kafka.bootstrap.split(',')[0] ?? '' },
    join(dir, example),
    '/items',
  );
}

before(async () => {
  kafka = await startKafka();
  dir = await mkdtemp(join(tmpdir(), 'kgate-zilla-http-kafka-'));
});

after(async () => {
  await kafka?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('http.kafka.cache', () => {
  let kgate: ZillaExample;

  before(async () => {
    await freshTopic();
    kgate = await start('http.kafka.cache');
  });

  after(async () => kgate?.stop());

  it('answers the items, empty at first, then 304 for their ETag', async () => {
    const all = await fetch(kgate.url('/items'));
    assert.equal(all.status, 200);
    assert.equal(all.headers.get('content-type'), 'application/json');
    const etag = all.headers.get('etag');
    assert.ok(etag !== null);
    assert.deepEqual(await all.json(), []);
    const again = await fetch(kgate.url('/items'), { headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304);
    assert.equal(again.headers.get('etag'), etag);
    // As the example's README shows it: the merged list's 304 says what its 200 would be.
    assert.equal(again.headers.get('content-type'), 'application/json');
  });

  it('answers 404 for an item not there after the wait, then the item once produced, then 304', async () => {
    const started = Date.now();
    const missing = await fetch(kgate.url(`/items/${ITEM}`), { headers: { prefer: 'wait=2' } });
    assert.equal(missing.status, 404);
    await missing.arrayBuffer();
    assert.ok(Date.now() - started >= 1_900, 'the 404 came after the wait');

    const waiting = fetch(kgate.url(`/items/${ITEM}`), { headers: { prefer: 'wait=5' } });
    const value = `{"greeting":"Hello, world ${new Date().toString()}"}`;
    await kafka.produce(TOPIC, [{ key: ITEM, value, headers: { 'content-type': 'application/json' } }]);
    const found = await waiting;
    assert.equal(found.status, 200);
    assert.equal(found.headers.get('content-type'), 'application/json');
    assert.equal(await found.text(), value);
    const etag = found.headers.get('etag');
    assert.ok(etag !== null);

    const unchanged = await fetch(kgate.url(`/items/${ITEM}`), { headers: { 'if-none-match': etag } });
    assert.equal(unchanged.status, 304);
    assert.equal(unchanged.headers.get('etag'), etag);
  });
});

describe('http.kafka.crud', () => {
  let kgate: ZillaExample;

  before(async () => {
    await freshTopic();
    kgate = await start('http.kafka.crud');
  });

  after(async () => kgate?.stop());

  const json = { 'content-type': 'application/json' };

  it('creates with POST and an Idempotency-Key, then fetches the item by that key', async () => {
    const body = '{"greeting":"Hello, world1"}';
    const created = await fetch(kgate.url('/items'), {
      method: 'POST',
      headers: { 'idempotency-key': '1', ...json },
      body,
    });
    assert.equal(created.status, 204);
    await created.arrayBuffer();
    let item: Response | undefined;
    await until('the created item to be served', async () => {
      item = await fetch(kgate.url('/items/1'));
      if (item.status === 200) return true;
      await item.arrayBuffer();
      return false;
    });
    assert.ok(item !== undefined);
    assert.equal(item.headers.get('content-type'), 'application/json');
    assert.ok(item.headers.get('etag') !== null);
    assert.equal(await item.text(), body);
  });

  it('updates with PUT, lists every item, and deletes with DELETE', async () => {
    const body = '{"greeting":"Hello, world2"}';
    const updated = await fetch(kgate.url('/items/1'), { method: 'PUT', headers: json, body });
    assert.equal(updated.status, 204);
    await updated.arrayBuffer();
    await until(
      'the update to be served',
      async () => (await (await fetch(kgate.url('/items/1'))).text()) === body,
    );

    const all = await fetch(kgate.url('/items'));
    assert.equal(all.status, 200);
    assert.equal(all.headers.get('content-type'), 'application/json');
    assert.deepEqual(await all.json(), [{ greeting: 'Hello, world2' }]);

    const deleted = await fetch(kgate.url('/items/1'), { method: 'DELETE' });
    assert.equal(deleted.status, 204);
    await deleted.arrayBuffer();
    await until('the deletion to be served', async () => {
      const res = await fetch(kgate.url('/items/1'));
      await res.arrayBuffer();
      return res.status === 404;
    });
    assert.deepEqual(await (await fetch(kgate.url('/items'))).json(), []);
  });
});
