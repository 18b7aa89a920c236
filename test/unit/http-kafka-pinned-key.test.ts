import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { pinnedKey } from '../../src/bindings/http-kafka/pinned-key.ts';
import { buildFilters, filterTemplates } from '../../src/bindings/proxies/filter-templates.ts';
import type { Filter } from '../../src/bindings/kafka/cache_client/index.ts';

const params = new Set(['id']);
const filtersOf = (raw: unknown): Filter[] | undefined =>
  buildFilters(filterTemplates(raw, 'with', params), { id: 'item-7' });

describe('http-kafka pinned key', () => {
  it('finds the key of one key filter, with its header conditions', () => {
    const plain = pinnedKey(filtersOf([{ key: '${params.id}' }]));
    assert.equal(plain?.key.toString(), 'item-7');
    assert.deepEqual(plain?.conditions, []);
    const withHeaders = pinnedKey(filtersOf([{ key: '${params.id}', headers: { tenant: 'a' } }]));
    assert.equal(withHeaders?.key.toString(), 'item-7');
    assert.deepEqual(withHeaders?.conditions, [{ header: { name: 'tenant', value: Buffer.from('a') } }]);
  });

  it('declines filters a key index cannot answer alone', () => {
    assert.equal(pinnedKey(undefined), undefined);
    assert.equal(pinnedKey(filtersOf([{ headers: { tenant: 'a' } }])), undefined);
    assert.equal(pinnedKey(filtersOf([{ key: 'a' }, { key: 'b' }])), undefined);
    assert.equal(pinnedKey([[{ key: null }]]), undefined);
    assert.equal(pinnedKey([[{ key: Buffer.from('a') }, { not: { key: Buffer.from('b') } }]]), undefined);
    assert.equal(pinnedKey([[{ key: Buffer.from('a') }, { key: Buffer.from('b') }]]), undefined);
    assert.equal(pinnedKey([[{ key: Buffer.from('a') }, { key: Buffer.from('a') }]])?.key.toString(), 'a');
  });
});
