import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import type { CacheStream, Condition, Filter } from '../../src/bindings/kafka/cache_client/index.ts';
import { chainAvailable, drain, startChain, str, take, type Chain } from './cache-client-harness.ts';

// Every filter set runs through the real chain and is judged against a brute-force evaluator
// written here from the filter semantics alone, over the messages as they were produced (not as
// delivered), so a record mangled on the way would show up as a mismatch too.

let chain: Chain;

before(async () => {
  if (chainAvailable) chain = await startChain('cc-filters');
});

after(async () => {
  if (chainAvailable) await chain?.stop();
});

interface Sent {
  readonly id: string;
  readonly key: string | null;
  readonly headers: readonly { readonly key: string; readonly value: string | null }[];
}

// Deterministic, so a failure reproduces with the same messages.
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function messages(count: number): Sent[] {
  const rand = prng(42);
  const pick = <T>(xs: readonly T[]): T => {
    const x = xs[Math.floor(rand() * xs.length)];
    if (x === undefined) throw new Error('empty choice');
    return x;
  };
  const keys = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5', '', null, null];
  const names = ['type', 'tag', 'tag', 'tag', 'other'];
  const values = ['a', 'b', 'c', 'a', 'b', null];
  return Array.from({ length: count }, (_, i) => ({
    id: `m${i}`,
    key: pick(keys),
    headers: Array.from({ length: Math.floor(rand() * 6) }, () => ({
      key: pick(names),
      value: pick(values),
    })),
  }));
}

// --- the brute-force evaluator -------------------------------------------------------------

type Pattern = string | 'SKIP' | 'SKIP_MANY';

interface Spec {
  readonly label: string;
  readonly filters: readonly SpecFilter[];
}
type SpecCondition =
  | { readonly key: string | null }
  | { readonly header: readonly [string, string] }
  | { readonly headers: readonly [string, readonly Pattern[]] }
  | { readonly not: SpecCondition };
type SpecFilter = readonly SpecCondition[];

// Tries every way a pattern can consume the values: exponential, but patterns here are short.
function sequenceMatches(pattern: readonly Pattern[], values: readonly (string | null)[]): boolean {
  if (pattern.length === 0) return values.length === 0;
  const [head, ...rest] = pattern;
  if (head === 'SKIP_MANY') {
    for (let n = 0; n <= values.length; n++) if (sequenceMatches(rest, values.slice(n))) return true;
    return false;
  }
  if (values.length === 0) return false;
  const [first, ...others] = values;
  if (head === 'SKIP' || (first !== null && first === head)) return sequenceMatches(rest, others);
  return false;
}

function holds(c: SpecCondition, m: Sent): boolean {
  if ('not' in c) return !holds(c.not, m);
  if ('key' in c) return m.key === c.key;
  if ('header' in c) return m.headers.some((h) => h.key === c.header[0] && h.value === c.header[1]);
  const [name, pattern] = c.headers;
  return sequenceMatches(
    pattern,
    m.headers.filter((h) => h.key === name).map((h) => h.value),
  );
}

function expectedMask(spec: Spec, m: Sent): number {
  let mask = 0;
  spec.filters.forEach((filter, i) => {
    if (filter.every((c) => holds(c, m))) mask += 2 ** i;
  });
  return mask;
}

// --- the same filters in the API's shape ---------------------------------------------------

function toCondition(c: SpecCondition): Condition {
  if ('not' in c) return { not: toCondition(c.not) };
  if ('key' in c) return { key: c.key === null ? null : Buffer.from(c.key) };
  if ('header' in c) return { header: { name: c.header[0], value: Buffer.from(c.header[1]) } };
  return {
    headers: {
      name: c.headers[0],
      values: c.headers[1].map((p) =>
        p === 'SKIP' ? { skip: true } : p === 'SKIP_MANY' ? { skipMany: true } : Buffer.from(p),
      ),
    },
  };
}

const toFilters = (spec: Spec): Filter[] => spec.filters.map((f) => f.map(toCondition));

const typeA = { header: ['type', 'a'] } as const;
const tagB = { header: ['tag', 'b'] } as const;
const SPECS: readonly Spec[] = [
  { label: 'key', filters: [[{ key: 'k1' }]] },
  { label: 'null key', filters: [[{ key: null }]] },
  { label: 'empty key', filters: [[{ key: '' }]] },
  { label: 'not key', filters: [[{ not: { key: 'k1' } }]] },
  { label: 'header', filters: [[typeA]] },
  { label: 'not header', filters: [[{ not: typeA }]] },
  { label: 'header and header', filters: [[typeA, tagB]] },
  { label: 'header or header', filters: [[typeA], [tagB]] },
  { label: 'key and header', filters: [[{ key: 'k2' }, { header: ['tag', 'c'] }]] },
  { label: 'key or header', filters: [[{ key: 'k2' }], [{ header: ['tag', 'c'] }]] },
  { label: 'not key and not header', filters: [[{ not: { key: 'k0' } }, { not: tagB }]] },
  { label: 'not not', filters: [[{ not: { not: { key: 'k3' } } }]] },
  { label: 'headers exact', filters: [[{ headers: ['tag', ['a', 'b']] }]] },
  { label: 'headers none', filters: [[{ headers: ['tag', []] }]] },
  { label: 'headers skip', filters: [[{ headers: ['tag', ['a', 'SKIP']] }]] },
  { label: 'headers skip skip', filters: [[{ headers: ['tag', ['SKIP', 'SKIP']] }]] },
  { label: 'headers prefix', filters: [[{ headers: ['tag', ['a', 'SKIP_MANY']] }]] },
  { label: 'headers suffix', filters: [[{ headers: ['tag', ['SKIP_MANY', 'c']] }]] },
  { label: 'headers contains', filters: [[{ headers: ['tag', ['SKIP_MANY', 'b', 'SKIP_MANY']] }]] },
  {
    label: 'headers skip-many mixed',
    filters: [[{ headers: ['tag', ['SKIP_MANY', 'a', 'SKIP', 'SKIP_MANY', 'b', 'SKIP_MANY']] }]],
  },
  { label: 'headers any', filters: [[{ headers: ['tag', ['SKIP_MANY']] }]] },
  { label: 'not headers', filters: [[{ not: { headers: ['tag', ['SKIP_MANY', 'a', 'SKIP_MANY']] } }]] },
  {
    label: 'headers and key or header',
    filters: [[{ headers: ['tag', ['SKIP', 'SKIP_MANY']] }, { key: 'k4' }], [typeA], [{ key: null }]],
  },
  { label: 'empty filter', filters: [[]] },
  {
    label: 'overlapping bits',
    filters: [
      [{ key: 'k1' }],
      [typeA],
      [{ not: { key: 'k1' } }, { headers: ['tag', ['SKIP_MANY', 'b', 'SKIP_MANY']] }],
      [{ not: typeA }],
      [{ key: 'never' }],
    ],
  },
];

const COUNT = 400;
const PARTITIONS = 3;

describe('cache_client filters against a brute-force evaluation', { skip: !chainAvailable }, () => {
  const sent = messages(COUNT);
  let t: string;

  before(async () => {
    t = await chain.topic(PARTITIONS);
    const producer = await chain.client.open(t, { capabilities: 'produce' });
    for (let i = 0; i < COUNT; i += 100) {
      await Promise.all(
        sent.slice(i, i + 100).map((m, j) =>
          producer.produce({
            key: m.key,
            value: m.id,
            partition: (i + j) % PARTITIONS,
            headers: m.headers.map((h) => ({
              key: h.key,
              value: h.value === null ? null : Buffer.from(h.value),
            })),
          }),
        ),
      );
    }
    producer.close();
    // Every record is in the cache before any filtered stream opens.
    const all = await chain.client.open(t, { defaultOffset: 'historical' });
    const got = await take(all, COUNT);
    all.close();
    const byId = new Map(sent.map((m) => [m.id, m]));
    for (const m of got) {
      const original = byId.get(str(m.value));
      assert.ok(original, `unknown message ${str(m.value)}`);
      assert.equal(m.key === null ? null : m.key.toString(), original.key, `key of ${original.id}`);
      assert.deepEqual(
        m.headers.map((h) => [h.name.toString(), h.value === null ? null : h.value.toString()]),
        original.headers.map((h) => [h.key, h.value]),
        `headers of ${original.id}`,
      );
      assert.equal(m.filters, 0, 'no filters, no bits');
    }
  });

  it('delivers exactly the matching messages with the matching filter bits, for every kind', async () => {
    // Each spec must select some and reject some messages, or it proves little.
    for (const spec of SPECS) {
      const hits = sent.filter((m) => expectedMask(spec, m) !== 0).length;
      if (!['empty filter', 'headers any', 'overlapping bits'].includes(spec.label))
        assert.ok(hits > 0 && hits < COUNT, `${spec.label} selects ${hits} of ${COUNT}`);
    }
    const streams = await Promise.all(
      SPECS.map((spec) => chain.client.open(t, { defaultOffset: 'historical', filters: toFilters(spec) })),
    );
    const results = await Promise.all(
      streams.map(async (stream: CacheStream, i) => {
        const { messages: got } = await drain(stream, 700);
        stream.close();
        return { spec: SPECS[i], got };
      }),
    );
    for (const { spec, got } of results) {
      assert.ok(spec);
      const expected = new Map<string, number>();
      for (const m of sent) {
        const mask = expectedMask(spec, m);
        if (mask !== 0) expected.set(m.id, mask);
      }
      const delivered = new Map<string, number>();
      for (const m of got) {
        assert.ok(!delivered.has(str(m.value)), `${spec.label}: ${str(m.value)} delivered twice`);
        delivered.set(str(m.value), m.filters);
      }
      const missing = [...expected.keys()].filter((id) => !delivered.has(id));
      const extra = [...delivered.keys()].filter((id) => !expected.has(id));
      assert.deepEqual({ missing, extra }, { missing: [], extra: [] }, spec.label);
      for (const [id, mask] of expected)
        assert.equal(delivered.get(id), mask, `${spec.label}: filter bits of ${id}`);
      for (let p = 0; p < PARTITIONS; p++) {
        const offsets = got.filter((m) => m.partition === p).map((m) => m.offset);
        assert.deepEqual(
          offsets,
          [...offsets].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
          `${spec.label}: partition ${p} in order`,
        );
      }
    }
  });

  it('judges undelivered messages by filters replaced mid-stream', async () => {
    const first = SPECS.find((s) => s.label === 'key');
    const second = SPECS.find((s) => s.label === 'header or header');
    assert.ok(first && second);
    const stream = await chain.client.open(t, { defaultOffset: 'historical', filters: toFilters(first) });
    const head = await take(stream, 5);
    stream.setFilters(toFilters(second));
    const { messages: rest } = await drain(stream, 700);
    stream.close();
    const seen = new Set(head.map((m) => str(m.value)));
    for (const m of head) assert.equal(m.filters, expectedMask(first, byId(str(m.value))));
    for (const m of rest) {
      assert.ok(!seen.has(str(m.value)), `${str(m.value)} twice`);
      assert.equal(m.filters, expectedMask(second, byId(str(m.value))), `bits of ${str(m.value)}`);
    }
    function byId(id: string): Sent {
      const m = sent.find((x) => x.id === id);
      assert.ok(m);
      return m;
    }
  });
});
