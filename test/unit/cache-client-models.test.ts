import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import avro from 'avsc';
import { Registry } from 'prom-client';
import { pino } from 'pino';
import { CacheClientModels } from '../../src/bindings/kafka/cache_client/models.ts';
import { CacheStream } from '../../src/bindings/kafka/cache_client/stream.ts';
import { errorCodeOf } from '../../src/engine/errors.ts';
import { frame } from '../../src/models/wire.ts';
import { rec, StreamReader } from '../support/cache-stream.ts';
import { closeFakeTopics, FakeCacheServer, FakeTopic } from '../support/fake-cache.ts';

after(closeFakeTopics);

const SCHEMA = JSON.stringify({
  type: 'record',
  name: 'Item',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'n', type: 'int' },
  ],
});
const ITEM = avro.Type.forSchema(JSON.parse(SCHEMA) as avro.Schema);

describe('cache_client streams with a topic model', () => {
  let server: Server;
  let url: string;
  let down = false;
  let asked = 0;

  before(async () => {
    server = createServer((req, res) => {
      asked++;
      if (down || req.url !== '/schemas/ids/5') {
        res.writeHead(down ? 503 : 404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ schema: SCHEMA }));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.close();
  });

  function models(metrics: Registry, lines: string[]): CacheClientModels {
    const log = pino({ level: 'warn' }, { write: (line: string) => lines.push(line) });
    return new CacheClientModels(
      'client',
      [
        {
          name: 'items*',
          value: { model: 'avro', view: 'json', catalog: { reg: [{ strategy: 'topic' }] } },
        },
      ],
      { reg: { type: 'schema-registry', options: { url } } },
      metrics,
      log,
    );
  }

  function stream(topic: FakeTopic, views: ReturnType<CacheClientModels['viewsFor']>): CacheStream {
    return new CacheStream({
      topic,
      exit: new FakeCacheServer(),
      options: {},
      defaultOffset: 'historical',
      ...(views === undefined ? {} : { views }),
    });
  }

  it('delivers JSON to every reader, converting each record once, and skips what does not decode', async () => {
    const metrics = new Registry();
    const lines: string[] = [];
    const m = models(metrics, lines);
    const topic = new FakeTopic('items');
    const value = (id: string): string => frame(5, ITEM.toBuffer({ id, n: 1 })).toString('latin1');
    topic.append(0, [
      { ...rec(0, 'a', null), value: Buffer.from(value('a'), 'latin1') },
      rec(1, 'b', 'not avro'),
      rec(2, 'c', 'not avro either'),
      { ...rec(3, 'd', null), value: Buffer.from(value('d'), 'latin1') },
    ]);
    asked = 0;
    const readers = Array.from({ length: 50 }, () => new StreamReader(stream(topic, m.viewsFor('items'))));
    for (const reader of readers) {
      const got = await reader.take(2);
      assert.deepEqual(
        got.map((message) => message.value?.toString()),
        ['{"id":"a","n":1}', '{"id":"d","n":1}'],
      );
      assert.equal(got[1]?.progress.get(0), 4n);
      reader.stream.close();
    }
    // Fifty readers, four records: each converted once, the schema asked for once, each record
    // that does not decode counted once.
    assert.equal(m.conversions, 4);
    assert.equal(asked, 1);
    const skipped = await metrics.getSingleMetricAsString('kgate_cache_client_records_skipped_total');
    assert.match(skipped, /topic="items",reason="no schema registry header"} 2/);
    assert.equal(lines.filter((line) => line.includes('records skipped')).length, 1);
    assert.equal(m.viewsFor('other'), undefined);
  });

  it('ends a read with KGATE_SCHEMA_UNAVAILABLE while the registry is down, and serves what it converted', async () => {
    const m = models(new Registry(), []);
    const topic = new FakeTopic('items-down');
    topic.append(0, [{ ...rec(0, 'a', null), value: frame(5, ITEM.toBuffer({ id: 'a', n: 2 })) }]);
    const before = new StreamReader(stream(topic, m.viewsFor('items-down')));
    assert.equal((await before.take(1))[0]?.value?.toString(), '{"id":"a","n":2}');
    before.stream.close();
    down = true;
    try {
      const again = new StreamReader(stream(topic, m.viewsFor('items-down')));
      assert.equal((await again.take(1))[0]?.value?.toString(), '{"id":"a","n":2}');
      again.stream.close();
      // A second model has not seen schema 5: its readers cannot be served now.
      const fresh = models(new Registry(), []);
      const failing = stream(topic, fresh.viewsFor('items-down'));
      await assert.rejects(
        failing.next(),
        (error: unknown) => errorCodeOf(error) === 'KGATE_SCHEMA_UNAVAILABLE',
      );
    } finally {
      down = false;
    }
  });
});
