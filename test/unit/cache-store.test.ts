import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { CacheStore } from '../../src/bindings/kafka/cache/index.ts';
import type { CachedRecord, RecordInput } from '../../src/bindings/kafka/cache/index.ts';
import { readAll, rec, removeTempDirs, tempDir } from '../support/cache-store.ts';

after(removeTempDirs);

function assertSameRecord(got: CachedRecord, want: RecordInput): void {
  assert.equal(got.offset, want.offset);
  assert.equal(got.timestamp, want.timestamp);
  assert.deepEqual(got.key, want.key);
  assert.deepEqual(got.value, want.value);
  assert.equal(got.producerId, want.producerId ?? -1n);
  assert.equal(got.transactional, want.transactional ?? false);
  assert.equal(got.control, want.control ?? false);
  assert.equal(got.aborted, want.aborted ?? false);
  const headers = (want.headers ?? []).map((h) => ({
    name: typeof h.name === 'string' ? Buffer.from(h.name) : h.name,
    value: h.value,
  }));
  assert.deepEqual(
    got.headers.map((h) => ({ name: h.name, value: h.value })),
    headers,
  );
}

describe('cache store: append and read', () => {
  it('round-trips records byte for byte across size boundaries', async () => {
    const dir = tempDir();
    const sizes = [0, 1, 100, 8191, 8192, 8193, 65535, 65536, 65537, 1024 * 1024];
    const input: RecordInput[] = [];
    let o = 0;
    for (const size of sizes) {
      input.push(rec(o++, { value: randomBytes(size), key: randomBytes(Math.min(size, 300)) }));
      input.push(rec(o++, { value: randomBytes(size), key: null }));
    }
    input.push(rec(o++, { value: null, key: Buffer.from('tomb') }));
    input.push(rec(o++, { value: null, key: null }));
    input.push(rec(o++, { value: Buffer.alloc(0), key: Buffer.alloc(0) }));
    input.push(
      rec(o++, {
        key: Buffer.from('h'),
        headers: [
          { name: 'content-type', value: Buffer.from('application/json') },
          { name: Buffer.from([0xff, 0x00]), value: null },
          { name: '', value: Buffer.alloc(0) },
          { name: 'big', value: randomBytes(70_000) },
        ],
        producerId: 123456789012345n,
        transactional: true,
        timestamp: -1,
      }),
    );
    input.push(
      rec(o++, { control: true, key: Buffer.from([0, 0, 0, 1]), value: Buffer.from([0, 0, 0, 0, 0, 7]) }),
    );
    input.push(rec(o++, { aborted: true, transactional: true, producerId: 7n, key: Buffer.from('a') }));
    input.push(rec(o++, { timestamp: 2 ** 47 - 1 }));

    let store = CacheStore.open(dir);
    let p = store.partition('t', 0);
    const res = p.append(input, { highWatermark: 100n, lastStableOffset: 90n });
    assert.equal(res.appended, input.length);
    assert.equal(res.nextOffset, BigInt(input.length));
    const check = (): void => {
      const got = readAll(p);
      assert.equal(got.length, input.length);
      got.forEach((g, i) => {
        const want = input[i];
        assert.ok(want);
        assertSameRecord(g, want);
      });
    };
    check();
    await store.close();

    store = CacheStore.open(dir);
    p = store.partition('t', 0);
    check();
    assert.equal(p.nextOffset, BigInt(input.length));
    assert.equal(p.highWatermark, 100n);
    assert.equal(p.lastStableOffset, 90n);
    const s = p.stats();
    assert.equal(s.records, input.length);
    assert.equal(s.firstOffset, 0n);
    assert.equal(s.lastOffset, BigInt(input.length - 1));
    assert.equal(
      s.bytes,
      readAll(p).reduce((n, r) => n + r.size, 0),
    );
    await store.close();
  });

  it('skips offsets already cached and keeps gaps', async () => {
    const store = CacheStore.open(tempDir());
    const p = store.partition('t', 0);
    p.append([rec(0), rec(1), rec(5)]);
    const r = p.append([rec(1), rec(5), rec(6), rec(9)], { nextOffset: 12n });
    assert.equal(r.appended, 2);
    assert.equal(r.nextOffset, 12n);
    assert.deepEqual(
      readAll(p).map((x) => x.offset),
      [0n, 1n, 5n, 6n, 9n],
    );
    assert.equal(p.offsetAtOrAfter(2n), 5n);
    assert.equal(p.offsetAtOrAfter(10n), null);
    // A read past the last record but below nextOffset jumps the trailing hole.
    assert.deepEqual(p.read(10n), { records: [], nextOffset: 12n });
    assert.deepEqual(p.read(15n), { records: [], nextOffset: 15n });
    await store.close();
  });

  it('honours maxRecords and maxBytes, always returning one record', async () => {
    const store = CacheStore.open(tempDir());
    const p = store.partition('t', 0);
    p.append(Array.from({ length: 50 }, (_, i) => rec(i, { value: Buffer.alloc(1000, i) })));
    const a = p.read(0n, { maxRecords: 7 });
    assert.equal(a.records.length, 7);
    assert.equal(a.nextOffset, 7n);
    const b = p.read(7n, { maxBytes: 3500 });
    assert.equal(b.records.length, 3);
    assert.equal(b.nextOffset, 10n);
    const c = p.read(10n, { maxBytes: 1 });
    assert.equal(c.records.length, 1);
    // Views stay valid after later reads reuse lmdb's buffers.
    p.read(0n, { maxRecords: 50 });
    assert.deepEqual(a.records[3]?.value, Buffer.alloc(1000, 3));
    await store.close();
  });

  it('keeps partitions apart', async () => {
    const store = CacheStore.open(tempDir());
    const a = store.partition('orders', 0);
    const b = store.partition('orders', 1);
    const c = store.partition('orders.v2', 0);
    a.append([rec(0, { key: Buffer.from('k') }), rec(1)]);
    b.append([rec(0, { key: Buffer.from('k') })]);
    assert.equal(readAll(a).length, 2);
    assert.equal(readAll(b).length, 1);
    assert.equal(readAll(c).length, 0);
    assert.equal(a.latestOffsetOf(Buffer.from('k')), 0n);
    assert.equal(c.latestOffsetOf(Buffer.from('k')), null);
    assert.deepEqual(
      store
        .partitions()
        .sort((x, y) => (x.topic === y.topic ? x.partition - y.partition : x.topic < y.topic ? -1 : 1)),
      [
        { topic: 'orders', partition: 0 },
        { topic: 'orders', partition: 1 },
        { topic: 'orders.v2', partition: 0 },
      ],
    );
    const s = store.stats();
    assert.equal(s.records, 3);
    assert.ok(s.fileBytes > 0);
    await store.close();
  });
});

describe('cache store: grouped transactions', () => {
  it('commits appends to several partitions together, or none of them', async () => {
    const dir = tempDir();
    let store = CacheStore.open(dir);
    const a = store.partition('t', 0);
    const b = store.partition('t', 1);
    store.transaction(() => {
      a.append([rec(0, { key: Buffer.from('k') }), rec(1)]);
      b.append([rec(0)]);
      a.append([rec(2)], { highWatermark: 3n });
    });
    assert.equal(a.nextOffset, 3n);
    assert.equal(a.highWatermark, 3n);
    assert.equal(b.nextOffset, 1n);
    assert.throws(
      () =>
        store.transaction(() => {
          a.append([rec(3, { key: Buffer.from('k') })]);
          b.append([rec(1)]);
          throw new Error('fetch handling failed');
        }),
      /fetch handling failed/,
    );
    assert.equal(a.nextOffset, 3n);
    assert.equal(b.nextOffset, 1n);
    assert.equal(a.latestOffsetOf(Buffer.from('k')), 0n);
    assert.equal(readAll(a).length, 3);
    // A failing append inside the group is undone alone when the caller carries on.
    store.transaction(() => {
      assert.throws(() => a.append([rec(3), rec(4, { timestamp: 2 ** 50 })]), RangeError);
      b.append([rec(1)]);
    });
    assert.equal(a.nextOffset, 3n);
    assert.equal(b.nextOffset, 2n);
    let compaction: Promise<unknown> | undefined;
    store.transaction(() => {
      compaction = a.compact({});
    });
    assert.ok(compaction);
    await assert.rejects(compaction, /inside CacheStore.transaction/);
    assert.throws(() => store.transaction(async () => {}), /synchronous/);
    await store.close();
    store = CacheStore.open(dir);
    assert.equal(store.partition('t', 0).nextOffset, 3n);
    assert.equal(readAll(store.partition('t', 0)).length, 3);
    assert.equal(readAll(store.partition('t', 1)).length, 2);
    await store.close();
  });
});

describe('cache store: key index', () => {
  it('tracks the latest offset per key through overwrites', async () => {
    const store = CacheStore.open(tempDir());
    const p = store.partition('t', 0);
    const long1 = Buffer.alloc(2000, 1);
    const long2 = Buffer.concat([Buffer.alloc(1999, 1), Buffer.from([2])]);
    p.append([
      rec(0, { key: Buffer.from('a') }),
      rec(1, { key: Buffer.from('b') }),
      rec(2, { key: Buffer.from('a') }),
      rec(3, { key: long1 }),
      rec(4, { key: long2 }),
      rec(5, { key: Buffer.from('c'), aborted: true }),
      rec(6, { key: Buffer.from('b'), control: true }),
      rec(7, { key: null }),
    ]);
    p.append([rec(8, { key: Buffer.from('a'), value: null })]);
    assert.equal(p.latestOffsetOf(Buffer.from('a')), 8n);
    assert.equal(p.latestOffsetOf(Buffer.from('b')), 1n);
    assert.equal(p.latestOffsetOf(Buffer.from('c')), null);
    assert.equal(p.latestOffsetOf(long1), 3n);
    assert.equal(p.latestOffsetOf(long2), 4n);
    assert.equal(p.isLatestForKey(0n, Buffer.from('a')), false);
    assert.equal(p.isLatestForKey(2n, Buffer.from('a')), false);
    assert.equal(p.isLatestForKey(8n, Buffer.from('a')), true);
    assert.equal(p.isLatestForKey(1n, Buffer.from('b')), true);
    await store.close();
  });
});

describe('cache store: point reads', () => {
  it('reads the record at an exact offset into buffers of its own', async () => {
    const store = CacheStore.open(tempDir());
    const p = store.partition('t', 0);
    const big = Buffer.alloc(300_000, 7);
    p.append(
      [
        rec(0, { key: Buffer.from('a'), headers: [{ name: 'h', value: Buffer.from('x') }] }),
        rec(1, { key: Buffer.from('b'), value: big }),
        rec(3, { key: Buffer.from('c') }),
      ],
      { nextOffset: 5n },
    );
    const first = p.recordAt(0n);
    assert.ok(first !== undefined);
    assert.equal(first.offset, 0n);
    assert.equal(first.key?.toString(), 'a');
    assert.equal(first.value?.toString(), 'v0');
    assert.deepEqual(
      first.headers.map((h) => [h.name.toString(), h.value?.toString()]),
      [['h', 'x']],
    );
    // Later reads reuse lmdb-js's read buffer; what recordAt returned must not change with them.
    assert.equal(p.recordAt(3n)?.value?.toString(), 'v3');
    assert.equal(p.recordAt(1n)?.value?.equals(big), true);
    assert.equal(first.value?.toString(), 'v0');
    assert.equal(first.key?.toString(), 'a');
    // A hole left by the producer or compaction, the end, and past it have no record.
    assert.equal(p.recordAt(2n), undefined);
    assert.equal(p.recordAt(4n), undefined);
    assert.equal(p.recordAt(5n), undefined);
    assert.equal(p.recordAt(-1n), undefined);
    await store.close();
  });
});

describe('cache store: seek by timestamp', () => {
  it('finds the first offset with timestamp >= t, with timestamps out of order', async () => {
    const store = CacheStore.open(tempDir());
    const p = store.partition('t', 0);
    const ts = [10, 5, 20, 15, 30, 30, 25, 40];
    p.append(ts.map((t, i) => rec(i, { timestamp: t })));
    const want = (t: number): bigint | null => {
      const i = ts.findIndex((x) => x >= t);
      return i < 0 ? null : BigInt(i);
    };
    for (const t of [-5, 0, 5, 6, 10, 11, 12, 16, 20, 21, 26, 30, 31, 40, 41]) {
      assert.equal(p.offsetForTimestamp(t), want(t), `timestamp ${t}`);
    }
    await store.close();
  });
});
