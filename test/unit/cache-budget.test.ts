import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CacheStore, type RecordInput } from '../../src/bindings/kafka/cache/index.ts';
import { evictToBudget, LOW_WATER, type EvictionHost } from '../../src/bindings/kafka/cache_server/budget.ts';
import { cacheBudget, parseByteSize } from '../../src/engine/runtime.ts';

const dirs: string[] = [];
const stores: CacheStore[] = [];
after(async () => {
  for (const s of stores) await s.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function open(): CacheStore {
  const d = mkdtempSync(join(tmpdir(), 'kgate-budget-'));
  dirs.push(d);
  const store = CacheStore.open(d, { durability: 'none' });
  stores.push(store);
  return store;
}

/** Appends count records of about size bytes each. */
function fill(store: CacheStore, topic: string, partition: number, count: number, size = 1000): void {
  const p = store.partition(topic, partition);
  const start = p.nextOffset;
  const records: RecordInput[] = Array.from({ length: count }, (_, i) => ({
    offset: start + BigInt(i),
    timestamp: 1_000,
    key: null,
    value: Buffer.alloc(size, i % 251),
  }));
  p.append(records);
}

interface Recorder {
  readonly host: EvictionHost;
  readonly truncated: Array<{ topic: string; partition: number; logStartOffset: bigint }>;
  evictedBytes: number;
}

function host(store: CacheStore, bootstrap: string[], lastUsed: Record<string, number>): Recorder {
  const rec: Recorder = {
    truncated: [],
    evictedBytes: 0,
    host: {
      store,
      isBootstrap: (t) => bootstrap.includes(t),
      lastUsed: (t) => lastUsed[t] ?? 0,
      truncated: (topic, partition, logStartOffset) =>
        rec.truncated.push({ topic, partition, logStartOffset }),
      evicted: (_t, _p, _r, bytes) => {
        rec.evictedBytes += bytes;
      },
    },
  };
  return rec;
}

const never = new AbortController().signal;

describe('evictToBudget', () => {
  it('does nothing within budget', async () => {
    const store = open();
    fill(store, 'a', 0, 10);
    const r = host(store, [], {});
    assert.equal(await evictToBudget(r.host, 1024 * 1024, never), undefined);
    assert.equal(store.partition('a', 0).stats().records, 10);
  });

  it('empties the least recently used topic before touching the next, and never a bootstrap topic', async () => {
    const store = open();
    fill(store, 'boot', 0, 100);
    fill(store, 'old', 0, 100);
    fill(store, 'old', 1, 50);
    fill(store, 'new', 0, 200);
    const total = store.stats().bytes;
    const budget = Math.floor(total * 0.7);
    const r = host(store, ['boot'], { old: 1, new: 2 });
    const round = await evictToBudget(r.host, budget, never);
    assert.ok(round !== undefined);
    assert.deepEqual(round.topics, ['old', 'new']);
    assert.ok(store.stats().bytes <= Math.floor(budget * LOW_WATER));
    assert.equal(round.bytesAfter, store.stats().bytes);
    assert.equal(round.evictedBytes, total - store.stats().bytes);
    assert.equal(r.evictedBytes, round.evictedBytes);
    assert.equal(store.partition('old', 0).stats().records, 0);
    assert.equal(store.partition('old', 1).stats().records, 0);
    assert.equal(store.partition('boot', 0).stats().records, 100);
    const n = store.partition('new', 0).stats();
    assert.ok(n.records > 0 && n.logStartOffset > 0n, 'the newer topic loses its oldest records only');
    assert.equal(n.lastOffset, 199n);
    assert.equal(n.firstOffset, n.logStartOffset);
    // Every truncation is announced with the log start it left.
    const last = r.truncated.filter((t) => t.topic === 'new').at(-1);
    assert.equal(last?.logStartOffset, n.logStartOffset);
    assert.ok(r.truncated.some((t) => t.topic === 'old' && t.partition === 1 && t.logStartOffset === 50n));
  });

  it('trims a topic across its partitions in proportion to their size', async () => {
    const store = open();
    fill(store, 't', 0, 300);
    fill(store, 't', 1, 100);
    const budget = Math.floor(store.stats().bytes / 2);
    const round = await evictToBudget(host(store, [], {}).host, budget, never);
    assert.ok(round !== undefined);
    const p0 = store.partition('t', 0).stats().records;
    const p1 = store.partition('t', 1).stats().records;
    assert.ok(p0 > 0 && p1 > 0, `both partitions keep their newest records (${p0}, ${p1})`);
    assert.ok(Math.abs(p0 / 300 - p1 / 100) < 0.1, `similar shares kept (${p0}/300, ${p1}/100)`);
  });

  it('reports bootstrap topics past the budget and leaves them whole', async () => {
    const store = open();
    fill(store, 'boot', 0, 100);
    fill(store, 'other', 0, 10);
    const budget = Math.floor(store.partition('boot', 0).stats().bytes / 2);
    const round = await evictToBudget(host(store, ['boot'], {}).host, budget, never);
    assert.ok(round !== undefined);
    assert.ok(round.bootstrapBytes > budget);
    assert.equal(store.partition('boot', 0).stats().records, 100);
    assert.equal(store.partition('other', 0).stats().records, 0);
  });

  it('stops at once when aborted', async () => {
    const store = open();
    fill(store, 'a', 0, 100);
    const aborted = AbortSignal.abort();
    const round = await evictToBudget(host(store, [], {}).host, 1000, aborted);
    assert.equal(round?.evictedBytes, 0);
    assert.equal(store.partition('a', 0).stats().records, 100);
  });
});

describe('eviction accounting', () => {
  it('counts an emptied topic as it is emptied, not a turn later', async () => {
    // The store shows the least recently used topic gone as soon as its first chunk of deletes
    // commits; a counter moved only when truncateBefore returned read 0 for it in between.
    const store = open();
    fill(store, 'lru', 0, 100, 10_000);
    fill(store, 'recent', 0, 100, 10_000);
    const lru = store.partition('lru', 0).stats().bytes;
    const r = host(store, [], { lru: 1, recent: 2 });
    const round = evictToBudget(r.host, lru + 1000, never);
    const emptied = store.partition('lru', 0).stats();
    assert.equal(emptied.records, 0);
    assert.equal(emptied.logStartOffset, 100n);
    assert.equal(r.evictedBytes, lru, 'every byte that went is counted by the time it shows');
    const done = await round;
    assert.equal(done?.evictedBytes, r.evictedBytes);
    assert.deepEqual(done?.topics, ['lru', 'recent']);
  });

  it('counts what a truncation removes though another starts while it deletes', async () => {
    // More records than one chunk of deletes: the first truncation yields between chunks, and a
    // second one (the broker's log start, or expiry finding records below the log start) used to
    // delete the rest and report it, leaving the first to report a fraction of what it dropped.
    const store = open();
    const p = store.partition('c', 0);
    fill(store, 'c', 0, 5000, 10);
    const bytes = p.stats().bytes;
    let heard = 0;
    const first = p.truncateBefore(5000n, (_records, b) => {
      heard += b;
    });
    const second = p.truncateBefore(100n);
    const leftovers = p.expire({ retentionMs: -1 });
    const [a, b, e] = await Promise.all([first, second, leftovers]);
    assert.equal(a.removedRecords, 5000);
    assert.equal(a.removedBytes, bytes);
    assert.equal(heard, bytes, 'each chunk is heard of as it commits');
    assert.equal(b.removedRecords, 0);
    assert.equal(e.removedRecords, 0);
    assert.equal(p.stats().records, 0);
    assert.equal(p.stats().bytes, 0);
  });
});

describe('PartitionStore.headEnd', () => {
  it('ends the head after the record that reaches the size, within the scan limit', () => {
    const store = open();
    fill(store, 'h', 0, 10, 100);
    const p = store.partition('h', 0);
    const size = p.stats().bytes / 10;
    assert.equal(p.headEnd(1), 1n);
    assert.equal(p.headEnd(size * 3), 3n);
    assert.equal(p.headEnd(size * 3 + 1), 4n);
    assert.equal(p.headEnd(size * 100), 10n);
    assert.equal(p.headEnd(size * 100, 4), 4n);
    assert.equal(store.partition('empty', 0).headEnd(100), 0n);
  });
});

describe('cache budget option', () => {
  it('parses byte sizes with binary units', () => {
    assert.equal(parseByteSize('1048576'), 1048576);
    assert.equal(parseByteSize('512MiB'), 512 * 1024 * 1024);
    assert.equal(parseByteSize('2g'), 2 * 1024 ** 3);
    assert.equal(parseByteSize('1.5 KB'), 1536);
    for (const bad of ['', '0', '-1', '10 parsecs', 'lots']) assert.equal(parseByteSize(bad), undefined, bad);
  });

  it('takes the option over KGATE_CACHE_MAX_BYTES, and the variable when the option is absent', () => {
    const env = { KGATE_CACHE_MAX_BYTES: '1MiB' };
    assert.deepEqual(cacheBudget({ cacheMaxBytes: 5, env }), { cacheMaxBytes: 5 });
    assert.deepEqual(cacheBudget({ env }), { cacheMaxBytes: 1024 * 1024 });
    assert.deepEqual(cacheBudget({ env: {} }), {});
    assert.throws(() => cacheBudget({ env: { KGATE_CACHE_MAX_BYTES: 'lots' } }), /KGATE_CACHE_MAX_BYTES/);
  });
});
