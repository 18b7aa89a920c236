import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import avro from 'avsc';
import protobuf from 'protobufjs';
import { errorCodeOf } from '../../src/engine/errors.ts';
import { createCatalog, type Catalog } from '../../src/models/catalog.ts';
import type { CatalogJson, ModelJson } from '../../src/models/config.ts';
import { InvalidContentError } from '../../src/models/errors.ts';
import { TopicModel } from '../../src/models/topic-model.ts';
import { decodeMessageIndexes, encodeMessageIndexes, frame, unframe } from '../../src/models/wire.ts';

const EVENT_AVSC = JSON.stringify({
  type: 'record',
  name: 'Event',
  namespace: 'io.example',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'status', type: 'string' },
  ],
});
const REQUEST_PROTO = 'syntax = "proto3";\nmessage Request {\n  string message = 1;\n  int32 count = 2;\n}\n';
const ITEM_JSON_SCHEMA = JSON.stringify({
  type: 'object',
  properties: { id: { type: 'string' }, price: { type: 'number' } },
  required: ['id'],
  additionalProperties: false,
});

function inline(subjects: Record<string, string>): Catalog {
  const json: CatalogJson = {
    type: 'inline',
    options: { subjects: Object.fromEntries(Object.entries(subjects).map(([s, schema]) => [s, { schema }])) },
  };
  return createCatalog('local', json);
}

function model(json: ModelJson, catalog: Catalog, topic = 'items'): TopicModel {
  return new TopicModel(json, new Map([[catalog.name, catalog]]), topic, 'value');
}

async function refused(promise: Promise<unknown>): Promise<InvalidContentError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof InvalidContentError, String(error));
    assert.equal(errorCodeOf(error), 'KGATE_INVALID_CONTENT');
    return error;
  }
  assert.fail('the value was taken');
}

describe('schema registry wire format', () => {
  it('frames a body with magic 0 and a 4-byte big-endian id, and reads it back', () => {
    const framed = frame(258, Buffer.from('body'));
    assert.deepEqual([...framed.subarray(0, 5)], [0, 0, 0, 1, 2]);
    assert.deepEqual(unframe(framed), { id: 258, body: Buffer.from('body') });
    assert.equal(unframe(Buffer.from([1, 0, 0, 0, 1, 9])), undefined);
    assert.equal(unframe(Buffer.from([0, 0, 1])), undefined);
  });

  it('writes protobuf message indexes as one 0 byte for the first type, as zigzag varints otherwise', () => {
    assert.deepEqual([...encodeMessageIndexes([0])], [0]);
    assert.deepEqual([...encodeMessageIndexes([1, 2])], [4, 2, 4]);
    assert.deepEqual(decodeMessageIndexes(Buffer.from([4, 2, 4, 99]))?.indexes, [1, 2]);
    assert.deepEqual(decodeMessageIndexes(Buffer.from([0, 99]))?.rest, Buffer.from([99]));
  });
});

describe('models', () => {
  it('json: a valid value is stored as sent; an invalid one is refused naming the field and schema', async () => {
    const items = model(
      { model: 'json', view: 'json', catalog: { local: [{ subject: 'item' }] } },
      inline({ item: ITEM_JSON_SCHEMA }),
    );
    const body = Buffer.from('{"id":"a","price":2}');
    assert.deepEqual(await items.encode(body), body);
    const error = await refused(items.encode(Buffer.from('{"id":"a","price":"two"}')));
    assert.match(error.message, /field \/price .*schema local\/item/);
    assert.match((await refused(items.encode(Buffer.from('{"price":2}')))).message, /field \/id/);
    assert.match((await refused(items.encode(Buffer.from('{"id":"a","x":1}')))).message, /field \/x/);
    assert.match((await refused(items.encode(Buffer.from('not json')))).message, /not JSON/);
  });

  it('avro with view json: JSON is encoded to Avro binary and read back as JSON', async () => {
    const events = model(
      { model: 'avro', view: 'json', catalog: { local: [{ subject: 'event' }] } },
      inline({ event: EVENT_AVSC }),
    );
    const stored = await events.encode(Buffer.from('{"id": "123", "status": "OK"}'));
    const type = avro.Type.forSchema(JSON.parse(EVENT_AVSC) as avro.Schema);
    // Written by kgate, read by avsc on its own: no registry header for an inline catalog.
    assert.deepEqual({ ...(type.fromBuffer(stored) as object) }, { id: '123', status: 'OK' });
    const viewed = events.viewOf(0, 0n, stored);
    assert.ok('value' in viewed);
    assert.equal(viewed.value.toString(), '{"id":"123","status":"OK"}');
    const error = await refused(events.encode(Buffer.from('{"id": 123, "status": "OK"}')));
    assert.match(error.message, /field \/id does not fit schema local\/event: must be string/);
    assert.match(
      (await refused(events.encode(Buffer.from('{"id":"1","status":"OK","x":1}')))).message,
      /field \/x/,
    );
  });

  it('avro: a stored value that does not decode is skipped with a reason', () => {
    const events = model(
      { model: 'avro', view: 'json', catalog: { local: [{ subject: 'event' }] } },
      inline({ event: EVENT_AVSC }),
    );
    const viewed = events.viewOf(0, 1n, Buffer.from([0xff, 0xff, 0xff]));
    assert.ok('skip' in viewed);
    assert.match(viewed.skip, /does not decode as avro/);
  });

  it('protobuf with view json: JSON to binary, unknown fields and wrong types refused', async () => {
    const requests = model(
      { model: 'protobuf', view: 'json', catalog: { local: [{ subject: 'request', record: 'Request' }] } },
      inline({ request: REQUEST_PROTO }),
    );
    const stored = await requests.encode(Buffer.from('{"message":"hello message","count":10}'));
    const type = protobuf.parse(REQUEST_PROTO).root.lookupType('Request');
    assert.deepEqual(type.toObject(type.decode(stored)), { message: 'hello message', count: 10 });
    const viewed = requests.viewOf(0, 0n, stored);
    assert.ok('value' in viewed);
    assert.deepEqual(JSON.parse(viewed.value.toString()), { message: 'hello message', count: 10 });
    assert.match(
      (await refused(requests.encode(Buffer.from('{"message":"m","count":10,"invalid":"field"}')))).message,
      /field \/invalid/,
    );
    assert.match(
      (await refused(requests.encode(Buffer.from('{"message":"m","count":"ten"}')))).message,
      /count/,
    );
  });

  it('protobuf without a view: binary bodies are checked against the message type', async () => {
    const requests = model(
      { model: 'protobuf', catalog: { local: [{ subject: 'request', record: 'Request' }] } },
      inline({ request: REQUEST_PROTO }),
    );
    const encode = (proto: string, value: Record<string, unknown>): Buffer => {
      const type = protobuf.parse(proto).root.lookupType('Request');
      return Buffer.from(type.encode(type.fromObject(value)).finish());
    };
    const good = encode(REQUEST_PROTO, { message: 'Hello, world', count: 10 });
    assert.deepEqual(await requests.encode(good), good);
    const badType = encode(REQUEST_PROTO.replace('int32 count', 'string count'), {
      message: 'x',
      count: 'ten',
    });
    assert.match((await refused(requests.encode(badType))).message, /field \/count .*must be int32/);
    const extra = encode(REQUEST_PROTO.replace('}', '  string extra = 3;\n}'), {
      message: 'x',
      count: 10,
      extra: 'field',
    });
    assert.match((await refused(requests.encode(extra))).message, /not a field/);
    const wrongOrder = encode(
      'syntax = "proto3";\nmessage Request {\n  int32 count = 1;\n  string message = 2;\n}\n',
      {
        message: 'x',
        count: 10,
      },
    );
    await refused(requests.encode(wrongOrder));
  });

  it('converts a record once for every reader that views it (the memo), again when its bytes differ', async () => {
    const events = model(
      { model: 'avro', view: 'json', catalog: { local: [{ subject: 'event' }] } },
      inline({ event: EVENT_AVSC }),
    );
    const stored = await events.encode(Buffer.from('{"id":"1","status":"OK"}'));
    for (let reader = 0; reader < 1000; reader++) {
      // Each reader has its own copy of the bytes, as each stream reads its own from the store.
      const viewed = events.viewOf(3, 7n, Buffer.from(stored));
      assert.ok('value' in viewed);
    }
    assert.equal(events.conversions, 1);
    events.viewOf(3, 7n, await events.encode(Buffer.from('{"id":"2","status":"OK"}')));
    assert.equal(events.conversions, 2);
  });
});

describe('schema registry catalog', () => {
  let server: Server;
  let url: string;
  const asked: string[] = [];
  let down = false;
  const schemas = new Map<number, string>([[1, EVENT_AVSC]]);
  const latest = 1;

  before(async () => {
    server = createServer((req, res) => {
      asked.push(req.url ?? '');
      if (down) {
        res.writeHead(503).end();
        return;
      }
      const byId = /^\/schemas\/ids\/(\d+)$/.exec(req.url ?? '');
      if (byId !== null) {
        const text = schemas.get(Number(byId[1]));
        if (text === undefined) res.writeHead(404).end('{"error_code":40403}');
        else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ schema: text }));
        return;
      }
      const version = /^\/subjects\/([^/]+)\/versions\/([^/]+)$/.exec(req.url ?? '');
      if (version !== null && version[1] === 'events-value') {
        const id = version[2] === 'latest' ? latest : Number(version[2]);
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ subject: 'events-value', version: id, id, schema: schemas.get(id) }));
        return;
      }
      res.writeHead(404).end('{"error_code":40401}');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(() => {
    server.close();
  });

  const registry = (): Catalog => createCatalog('registry', { type: 'schema-registry', options: { url } });

  it('encodes with the wire header of the latest version of the topic subject, asked for once', async () => {
    asked.length = 0;
    const catalog = registry();
    const events = model(
      { model: 'avro', view: 'json', catalog: { registry: [{ strategy: 'topic', version: 'latest' }] } },
      catalog,
      'events',
    );
    const stored = await events.encode(Buffer.from('{"id":"1","status":"OK"}'));
    await events.encode(Buffer.from('{"id":"2","status":"OK"}'));
    assert.deepEqual(asked, ['/subjects/events-value/versions/latest']);
    const framed = unframe(stored);
    assert.equal(framed?.id, 1);
    const type = avro.Type.forSchema(JSON.parse(EVENT_AVSC) as avro.Schema);
    assert.deepEqual({ ...(type.fromBuffer(framed.body) as object) }, { id: '1', status: 'OK' });
  });

  it('reads a value of an id it has not seen by asking for it once, then from its cache', async () => {
    asked.length = 0;
    schemas.set(7, EVENT_AVSC);
    const catalog = registry();
    const events = model(
      { model: 'avro', view: 'json', catalog: { registry: [{ strategy: 'topic' }] } },
      catalog,
      'events',
    );
    const type = avro.Type.forSchema(JSON.parse(EVENT_AVSC) as avro.Schema);
    const stored = frame(7, type.toBuffer({ id: 'x', status: 'new' }));
    const first = events.viewOf(0, 0n, stored);
    assert.ok('pending' in first);
    await first.pending;
    const viewed = events.viewOf(0, 0n, stored);
    assert.ok('value' in viewed);
    assert.equal(viewed.value.toString(), '{"id":"x","status":"new"}');
    events.viewOf(0, 1n, frame(7, type.toBuffer({ id: 'y', status: 'new' })));
    assert.deepEqual(asked, ['/schemas/ids/7']);
    const unframed = events.viewOf(0, 2n, type.toBuffer({ id: 'y', status: 'new' }));
    assert.ok('skip' in unframed);
  });

  it('registry down: a clear error for what needs it, while what was converted keeps being served', async () => {
    const catalog = registry();
    const events = model(
      { model: 'avro', view: 'json', catalog: { registry: [{ strategy: 'topic' }] } },
      catalog,
      'events',
    );
    const type = avro.Type.forSchema(JSON.parse(EVENT_AVSC) as avro.Schema);
    const known = frame(1, type.toBuffer({ id: 'k', status: 'OK' }));
    await events.encode(Buffer.from('{"id":"0","status":"OK"}'));
    const pending = events.viewOf(0, 0n, known);
    if ('pending' in pending) await pending.pending;
    assert.ok('value' in events.viewOf(0, 0n, known));
    down = true;
    try {
      assert.ok('value' in events.viewOf(0, 0n, known));
      const unknown = events.viewOf(0, 1n, frame(99, type.toBuffer({ id: 'u', status: 'OK' })));
      assert.ok('pending' in unknown);
      await assert.rejects(
        unknown.pending,
        (error: unknown) => errorCodeOf(error) === 'KGATE_SCHEMA_UNAVAILABLE',
      );
      // Encoding needs the subject's version; held from before, it is still served.
      assert.ok(unframe(await events.encode(Buffer.from('{"id":"1","status":"OK"}'))) !== undefined);
      const fresh = model(
        { model: 'avro', view: 'json', catalog: { registry: [{ strategy: 'topic' }] } },
        registry(),
        'events',
      );
      await assert.rejects(fresh.encode(Buffer.from('{"id":"1","status":"OK"}')), (error: unknown) => {
        assert.equal(errorCodeOf(error), 'KGATE_SCHEMA_UNAVAILABLE');
        assert.match((error as Error).message, /schema registry of catalog registry answered 503/);
        return true;
      });
    } finally {
      down = false;
    }
  });

  it('strategy encoded: the value carries its id; unframed values and ids the registry lacks are refused 400', async () => {
    const events = model(
      { model: 'avro', catalog: { registry: [{ strategy: 'encoded' }] } },
      registry(),
      '/events',
    );
    const type = avro.Type.forSchema(JSON.parse(EVENT_AVSC) as avro.Schema);
    const framed = frame(1, type.toBuffer({ id: 'e', status: 'OK' }));
    assert.deepEqual(await events.encode(framed), framed);
    assert.match(
      (await refused(events.encode(type.toBuffer({ id: 'e', status: 'OK' })))).message,
      /schema registry header/,
    );
    assert.match(
      (await refused(events.encode(frame(404, Buffer.from([2, 65, 2, 66]))))).message,
      /schema id 404/,
    );
    assert.match((await refused(events.encode(frame(1, Buffer.from([0xff]))))).message, /not Avro/);
  });

  it('a stored value naming an id the registry does not have is skipped, not an error', async () => {
    const events = model(
      { model: 'avro', view: 'json', catalog: { registry: [{ strategy: 'topic' }] } },
      registry(),
      'events',
    );
    const first = events.viewOf(0, 0n, frame(404, Buffer.from([0])));
    assert.ok('pending' in first);
    await first.pending;
    const viewed = events.viewOf(0, 0n, frame(404, Buffer.from([0])));
    assert.ok('skip' in viewed);
    assert.match(viewed.skip, /schema id 404 is not in the registry/);
  });

  it('a registry that is not listening is a clear error too', async () => {
    const gone = createCatalog('gone', {
      type: 'karapace-schema-registry',
      options: { url: 'http://127.0.0.1:9' },
    });
    await assert.rejects(gone.byId(1), (error: unknown) => {
      assert.equal(errorCodeOf(error), 'KGATE_SCHEMA_UNAVAILABLE');
      assert.match((error as Error).message, /not reachable at http:\/\/127.0.0.1:9/);
      return true;
    });
  });

  it('reaches Apicurio through its Confluent-compatible API', async () => {
    asked.length = 0;
    const apicurio = createCatalog('apicurio', { type: 'apicurio-registry', options: { url } });
    await assert.rejects(apicurio.byId(1));
    assert.deepEqual(asked, ['/apis/ccompat/v7/schemas/ids/1']);
  });
});
