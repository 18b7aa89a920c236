import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import avro from 'avsc';
import { pino } from 'pino';
import type { RecordInput } from '../../src/bindings/kafka/cache/index.ts';
import { CacheServerTransforms } from '../../src/bindings/kafka/cache_server/transforms.ts';
import { topicOptions } from '../../src/bindings/kafka/topic-options.ts';

const log = pino({ level: 'silent' });
const SCHEMA = JSON.stringify({
  type: 'record',
  name: 'Order',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'status', type: 'string' },
    { name: 'total', type: 'double' },
  ],
});
const ORDER = avro.Type.forSchema(JSON.parse(SCHEMA) as avro.Schema);

const record = (offset: number, value: Buffer | null, key: string | null = 'k'): RecordInput => ({
  offset: BigInt(offset),
  timestamp: 1_000,
  key: key === null ? null : Buffer.from(key),
  value,
  headers: [{ name: 'content-type', value: Buffer.from('application/json') }],
});

const headersOf = (r: RecordInput | undefined): Record<string, string> =>
  Object.fromEntries((r?.headers ?? []).map((h) => [String(h.name), h.value?.toString() ?? '']));

describe('cache_server transforms', () => {
  it('extracts the key and headers from JSON values, once per record, leaving records without the fields as they came', async () => {
    const transforms = new CacheServerTransforms(
      topicOptions([
        {
          name: 'orders*',
          transforms: [
            { 'extract-key': '${message.value.id}' },
            { 'extract-headers': { status: '${message.value.status}', total: '${message.value.total}' } },
          ],
        },
      ]),
      {},
      log,
    );
    assert.equal(transforms.forTopic('other'), undefined);
    const transform = transforms.forTopic('orders-eu');
    assert.ok(transform !== undefined);
    const [a, b, c, d] = await transform.apply([
      record(0, Buffer.from('{"id":"o-1","status":"paid","total":12.5}')),
      record(1, Buffer.from('{"status":"new"}'), 'kept'),
      record(2, Buffer.from('not json'), 'raw'),
      record(3, null, 'gone'),
    ]);
    assert.equal(a?.key?.toString(), 'o-1');
    assert.deepEqual(headersOf(a), { 'content-type': 'application/json', status: 'paid', total: '12.5' });
    assert.equal(b?.key?.toString(), 'kept');
    assert.deepEqual(headersOf(b), { 'content-type': 'application/json', status: 'new' });
    assert.equal(c?.key?.toString(), 'raw');
    assert.deepEqual(headersOf(c), { 'content-type': 'application/json' });
    assert.equal(d?.key?.toString(), 'gone');
  });

  it('decodes values by the topic model first (avro of an inline catalog)', async () => {
    const transforms = new CacheServerTransforms(
      topicOptions([
        {
          name: 'orders',
          value: { model: 'avro', view: 'json', catalog: { local: [{ subject: 'order' }] } },
          transforms: [{ 'extract-headers': { status: '${message.value.status}' } }],
        },
      ]),
      { local: { type: 'inline', options: { subjects: { order: { schema: SCHEMA } } } } },
      log,
    );
    const transform = transforms.forTopic('orders');
    assert.ok(transform !== undefined);
    const [a] = await transform.apply([record(0, ORDER.toBuffer({ id: 'x', status: 'shipped', total: 1 }))]);
    assert.equal(headersOf(a)['status'], 'shipped');
    assert.equal(a?.key?.toString(), 'k');
  });
});
