import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import {
  compileFilters,
  matchedIndexes,
  MAX_FILTERS,
  type Filter,
  type FilterSubject,
} from '../../src/bindings/kafka/cache_client/filters.ts';
import { cpuTimed } from '../support/cpu-time.ts';

const b = (s: string): Buffer => Buffer.from(s, 'utf8');

function subject(key: string | null, headers: [string, string | null][] = []): FilterSubject {
  return {
    key: key === null ? null : b(key),
    headers: headers.map(([name, value]) => ({ name: b(name), value: value === null ? null : b(value) })),
  };
}

function mask(filters: Filter[], s: FilterSubject): number {
  return compileFilters(filters).match(s);
}

describe('cache_client filters', () => {
  it('passes everything with mask 0 when there are no filters', () => {
    for (const f of [undefined, []]) {
      const set = compileFilters(f);
      assert.equal(set.count, 0);
      assert.equal(set.matches(subject('k')), true);
      assert.equal(set.match(subject(null)), 0);
    }
  });

  it('an empty filter matches every record', () => {
    assert.equal(mask([[]], subject('a')), 1);
  });

  it('matches keys exactly, and null keys only with key: null', () => {
    assert.equal(mask([[{ key: b('a') }]], subject('a')), 1);
    assert.equal(mask([[{ key: b('a') }]], subject('ab')), 0);
    assert.equal(mask([[{ key: b('a') }]], subject(null)), 0);
    assert.equal(mask([[{ key: null }]], subject(null)), 1);
    assert.equal(mask([[{ key: null }]], subject('')), 0);
    assert.equal(mask([[{ key: b('') }]], subject('')), 1);
  });

  it('matches a header by name and value, any occurrence', () => {
    const s = subject('k', [
      ['type', 'a'],
      ['type', 'b'],
      ['other', 'c'],
      ['nil', null],
    ]);
    assert.equal(mask([[{ header: { name: 'type', value: b('b') } }]], s), 1);
    assert.equal(mask([[{ header: { name: b('type'), value: b('a') } }]], s), 1);
    assert.equal(mask([[{ header: { name: 'type', value: b('c') } }]], s), 0);
    assert.equal(mask([[{ header: { name: 'missing', value: b('a') } }]], s), 0);
    assert.equal(
      mask([[{ header: { name: 'nil', value: b('') } }]], s),
      0,
      'a null value is not an empty one',
    );
  });

  it('ANDs conditions within a filter and ORs filters, reporting each match as a bit', () => {
    const filters: Filter[] = [
      [{ key: b('a') }, { header: { name: 'x', value: b('1') } }],
      [{ header: { name: 'x', value: b('1') } }],
      [{ key: b('z') }],
    ];
    const set = compileFilters(filters);
    assert.equal(set.match(subject('a', [['x', '1']])), 0b011);
    assert.equal(set.match(subject('a', [['x', '2']])), 0);
    assert.equal(set.match(subject('b', [['x', '1']])), 0b010);
    assert.equal(set.match(subject('z')), 0b100);
    assert.equal(set.matches(subject('z')), true);
    assert.equal(set.matches(subject('q')), false);
    assert.deepEqual(matchedIndexes(0b101), [0, 2]);
  });

  it('negates with not, nested', () => {
    assert.equal(mask([[{ not: { key: b('a') } }]], subject('a')), 0);
    assert.equal(mask([[{ not: { key: b('a') } }]], subject('b')), 1);
    assert.equal(mask([[{ not: { not: { key: b('a') } } }]], subject('a')), 1);
    assert.equal(
      mask(
        [[{ key: b('a') }, { not: { header: { name: 'deleted', value: b('yes') } } }]],
        subject('a', [['deleted', 'yes']]),
      ),
      0,
    );
  });

  describe('headers sequences', () => {
    const s = subject('k', [
      ['tag', 'a'],
      ['other', 'x'],
      ['tag', 'b'],
      ['tag', 'c'],
    ]);
    const seq = (values: (string | 'skip' | 'many')[]): Filter[] => [
      [
        {
          headers: {
            name: 'tag',
            values: values.map((v) =>
              v === 'skip' ? { skip: true } : v === 'many' ? { skipMany: true } : b(v),
            ),
          },
        },
      ],
    ];
    const cases: [(string | 'skip' | 'many')[], number][] = [
      [['a', 'b', 'c'], 1],
      [['a', 'b'], 0],
      [['b', 'c'], 0],
      [['a', 'many'], 1],
      [['many', 'c'], 1],
      [['many', 'b', 'many'], 1],
      [['many', 'd', 'many'], 0],
      [['a', 'skip', 'c'], 1],
      [['skip', 'skip', 'skip'], 1],
      [['skip', 'skip'], 0],
      [['skip', 'skip', 'skip', 'skip'], 0],
      [['many'], 1],
      [['a', 'many', 'c'], 1],
      [['a', 'many', 'b', 'c'], 1],
      [['a', 'many', 'a'], 0],
      [['many', 'many', 'c', 'many'], 1],
      [[], 0],
    ];
    for (const [values, want] of cases) {
      it(`[${values.join(', ')}] ${want ? 'matches' : 'does not match'} [a, b, c]`, () => {
        assert.equal(mask(seq(values), s), want);
      });
    }

    it('an empty pattern matches a record without that header', () => {
      assert.equal(mask(seq([]), subject('k')), 1);
      assert.equal(mask(seq(['many']), subject('k')), 1);
      assert.equal(mask(seq(['skip']), subject('k')), 0);
    });

    it('a null header value matches skip but no value', () => {
      const withNull = subject('k', [['tag', null]]);
      assert.equal(mask(seq(['skip']), withNull), 1);
      assert.equal(mask(seq(['']), withNull), 0);
    });

    it('stays fast with many skipMany steps', () => {
      const long = subject(
        'k',
        Array.from({ length: 40 }, (): [string, string] => ['tag', 'a']),
      );
      // CPU time, which a loaded machine barely stretches: backtracking would take seconds of it.
      const { ms, value } = cpuTimed(() => mask(seq(['many', 'many', 'many', 'many', 'many', 'b']), long));
      assert.equal(value, 0);
      assert.ok(ms < 1000, `${ms} ms of CPU`);
    });
  });

  it('uses bit 31 for the 32nd filter and refuses a 33rd', () => {
    const filters: Filter[] = Array.from({ length: MAX_FILTERS }, (_, i) => [{ key: b(String(i)) }]);
    assert.equal(compileFilters(filters).match(subject('31')), 2 ** 31);
    assert.deepEqual(matchedIndexes(compileFilters(filters).match(subject('31'))), [31]);
    assert.throws(() => compileFilters([...filters, []]), /at most 32 filters/);
  });

  it('rejects malformed conditions with their position', () => {
    assert.throws(
      () => compileFilters([[{ key: 'a' } as unknown as { key: Buffer }]]),
      /filters\[0\]\[0\]: key/,
    );
    assert.throws(
      () =>
        compileFilters([
          [],
          [{ key: null, header: { name: 'a', value: b('') } } as unknown as { key: null }],
        ]),
      /filters\[1\]\[0\]: a condition has exactly one/,
    );
    assert.throws(
      () =>
        compileFilters([
          [{ headers: { name: 'a', values: [{ skip: false } as unknown as { skip: true }] } }],
        ]),
      /headers.values\[0\]/,
    );
    assert.throws(
      () => compileFilters([[{ nope: 1 } as unknown as { key: null }]]),
      /unknown condition "nope"/,
    );
  });
});
