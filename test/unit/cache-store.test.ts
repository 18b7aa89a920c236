import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CacheStore } from '../../src/bindings/kafka/cache/index.ts';
import type { CachedRecord, PartitionStore, RecordInput } from '../../src/bindings/kafka/cache/index.ts';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'kgate-cache-'));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function rec(offset: number | bigint, fields: Partial<RecordInput> = {}): RecordInput {
  return { offset: BigInt(offset), timestamp: 1_000, key: null, value: Buffer.from(`v${offset}`), ...fields };
}

function readAll(p: PartitionStore, from = 0n): CachedRecord[] {
  const out: CachedRecord[] = [];
  let at = from;
  for (;;) {
    const r = p.read(at, { maxRecords: 1000, maxBytes: 64 * 1024 * 1024 });
    if (r.records.length === 0) return out;
    out.push(...r.records);
    at = r.nextOffset;
  }
}

// A small deterministic generator keeps the random tests reproducible from their seed.
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

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

interface ModelRecord {
  input: RecordInput;
  superseded: boolean;
}

describe('cache store: compaction', () => {
  it('matches a reference model over random appends and compactions', async () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const random = rng(seed);
      const store = CacheStore.open(tempDir());
      const p = store.partition('t', 0);
      const model = new Map<bigint, ModelRecord>();
      const latest = new Map<string, bigint>();
      let offset = 0;
      let now = 1_000_000;
      let removed = 0;
      for (let step = 0; step < 60; step++) {
        if (random() < 0.7) {
          const batch: RecordInput[] = [];
          const n = 1 + Math.floor(random() * 40);
          for (let i = 0; i < n; i++) {
            now += Math.floor(random() * 20);
            const kind = random();
            const key = Buffer.from(`k${Math.floor(random() * 15)}`);
            let r: RecordInput;
            if (kind < 0.05) r = rec(offset, { timestamp: now, key: null });
            else if (kind < 0.1) r = rec(offset, { timestamp: now, key, aborted: true, transactional: true });
            else if (kind < 0.13)
              r = rec(offset, { timestamp: now, key: Buffer.from([0, 0, 0, 0]), control: true });
            else if (kind < 0.3) r = rec(offset, { timestamp: now, key, value: null });
            else r = rec(offset, { timestamp: now, key, value: randomBytes(Math.floor(random() * 50)) });
            batch.push(r);
            model.set(r.offset, { input: r, superseded: false });
            if (r.key !== null && r.control !== true && r.aborted !== true) {
              const k = r.key.toString('hex');
              const prev = latest.get(k);
              const superseded = prev === undefined ? undefined : model.get(prev);
              if (superseded !== undefined) superseded.superseded = true;
              latest.set(k, r.offset);
            }
            offset++;
          }
          p.append(batch);
        } else {
          const minLag = Math.floor(random() * 200);
          const deleteRetention = Math.floor(random() * 400);
          const at = now + Math.floor(random() * 50);
          removed += (
            await p.compact({ minCompactionLagMs: minLag, deleteRetentionMs: deleteRetention, now: at })
          ).removedRecords;
          const graveLag = Math.max(minLag, deleteRetention);
          for (const [o, m] of [...model]) {
            const r = m.input;
            const old = (lag: number): boolean => r.timestamp + lag <= at;
            if ((r.aborted === true || m.superseded) && old(minLag)) model.delete(o);
            else if (r.control === true && old(graveLag)) model.delete(o);
            else if (r.key !== null && r.value === null && r.control !== true && r.aborted !== true) {
              const k = r.key.toString('hex');
              if (latest.get(k) === o && old(graveLag)) {
                model.delete(o);
                latest.delete(k);
              }
            }
          }
        }
        const got = readAll(p);
        assert.deepEqual(
          got.map((r) => r.offset),
          [...model.keys()],
          `seed ${seed} step ${step}`,
        );
        for (const r of got) assert.deepEqual(r.value, model.get(r.offset)?.input.value);
        for (let k = 0; k < 15; k++) {
          const key = Buffer.from(`k${k}`);
          assert.equal(
            p.latestOffsetOf(key),
            latest.get(key.toString('hex')) ?? null,
            `seed ${seed} key k${k}`,
          );
        }
        const s = p.stats();
        assert.equal(s.records, got.length);
        assert.equal(
          s.bytes,
          got.reduce((n, r) => n + r.size, 0),
        );
        assert.equal(s.firstOffset, got[0]?.offset ?? null);
        assert.equal(s.lastOffset, got[got.length - 1]?.offset ?? null);
      }
      assert.ok(removed > 0 && model.size > 0, `seed ${seed} removed ${removed}, kept ${model.size}`);
      await store.close();
    }
  });

  it('keeps tombstones for delete.retention.ms and reports when to come back', async () => {
    const store = CacheStore.open(tempDir());
    const p = store.partition('t', 0);
    p.append([
      rec(0, { key: Buffer.from('a'), timestamp: 1000 }),
      rec(1, { key: Buffer.from('a'), value: null, timestamp: 2000 }),
      rec(2, { key: Buffer.from('b'), value: null, timestamp: 3000 }),
    ]);
    let r = await p.compact({ minCompactionLagMs: 0, deleteRetentionMs: 5000, now: 6000 });
    assert.equal(r.removedRecords, 1);
    assert.deepEqual(
      readAll(p).map((x) => x.offset),
      [1n, 2n],
    );
    assert.equal(r.nextDueAt, 7000);
    r = await p.compact({ minCompactionLagMs: 0, deleteRetentionMs: 5000, now: 7000 });
    assert.equal(r.removedRecords, 1);
    assert.equal(p.latestOffsetOf(Buffer.from('a')), null);
    assert.equal(p.latestOffsetOf(Buffer.from('b')), 2n);
    assert.equal(r.nextDueAt, 8000);
    r = await p.compact({
      minCompactionLagMs: 0,
      deleteRetentionMs: 5000,
      now: 8000,
      maxCompactionLagMs: 100,
    });
    assert.equal(r.removedRecords, 1);
    assert.equal(r.nextDueAt, null);
    assert.equal(p.stats().records, 0);
    assert.equal(p.stats().firstOffset, null);
    assert.equal(p.nextOffset, 3n);
    // A reader positioned inside the emptied range moves on to the next offset to fetch.
    assert.deepEqual(p.read(0n), { records: [], nextOffset: 3n });
    await store.close();
  });

  it('respects min.compaction.lag.ms', async () => {
    const store = CacheStore.open(tempDir());
    const p = store.partition('t', 0);
    p.append([
      rec(0, { key: Buffer.from('a'), timestamp: 1000 }),
      rec(1, { key: Buffer.from('a'), timestamp: 5000 }),
    ]);
    let r = await p.compact({ minCompactionLagMs: 10_000, now: 10_999, maxCompactionLagMs: 500 });
    assert.equal(r.removedRecords, 0);
    assert.equal(r.nextDueAt, 11_000);
    r = await p.compact({ minCompactionLagMs: 10_000, now: 11_000 });
    assert.equal(r.removedRecords, 1);
    assert.deepEqual(
      readAll(p).map((x) => x.offset),
      [1n],
    );
    await store.close();
  });
});

describe('cache store: expiry', () => {
  // Each record below encodes to 7 (flags, timestamp) + 1 (length) + 92 = 100 bytes.
  const value = Buffer.alloc(92, 7);

  it('deletes whole segment-sized granules by time', async () => {
    const store = CacheStore.open(tempDir());
    const p = store.partition('t', 0);
    p.append(Array.from({ length: 100 }, (_, i) => rec(i, { value, timestamp: 1000 + i })));
    assert.equal(p.stats().bytes, 100 * 100);
    // Granules of 10 records; records 0..34 are older than retention, so granules 0..29 go.
    let r = await p.expire({ retentionMs: 1000, segmentBytes: 1000, now: 2035 });
    assert.equal(r.removedRecords, 30);
    assert.equal(r.logStartOffset, 30n);
    assert.equal(p.stats().firstOffset, 30n);
    assert.equal(p.stats().records, 70);
    // segment.ms closes granules too: spans of more than 4 ms hold 5 records.
    r = await p.expire({ retentionMs: 1000, segmentBytes: 1_000_000, segmentMs: 4, now: 2047 });
    assert.equal(r.logStartOffset, 45n);
    // The last, open granule goes by time as well.
    r = await p.expire({ retentionMs: 1000, segmentBytes: 1000, now: 5000 });
    assert.equal(r.logStartOffset, 100n);
    assert.equal(p.stats().records, 0);
    assert.equal(p.nextOffset, 100n);
    assert.equal(p.offsetForTimestamp(0), null);
    p.append([rec(100, { value, timestamp: 6000 })]);
    assert.equal(p.offsetForTimestamp(0), 100n);
    await store.close();
  });

  it('deletes whole granules by bytes, never the open one', async () => {
    const store = CacheStore.open(tempDir());
    const p = store.partition('t', 0);
    p.append(Array.from({ length: 95 }, (_, i) => rec(i, { value, timestamp: 1000, key: null })));
    const r = await p.expire({ retentionBytes: 4000, segmentBytes: 1000, now: 1000 });
    // 9500 bytes: dropping granules while the rest still holds 4000 leaves 4500 (45 records).
    assert.equal(r.removedRecords, 50);
    assert.equal(p.stats().bytes, 4500);
    assert.equal(p.logStartOffset, 50n);
    const r2 = await p.expire({ retentionBytes: 0, segmentBytes: 1000, now: 1000 });
    assert.equal(r2.logStartOffset, 90n);
    assert.equal(p.stats().records, 5);
    await store.close();
  });

  it('removes key-index entries of expired latest records', async () => {
    const store = CacheStore.open(tempDir());
    const p = store.partition('t', 0);
    p.append([
      rec(0, { key: Buffer.from('a'), value, timestamp: 1 }),
      rec(1, { key: Buffer.from('b'), value, timestamp: 1 }),
      rec(2, { key: Buffer.from('a'), value, timestamp: 100 }),
    ]);
    await p.expire({ retentionMs: 10, segmentBytes: 100, now: 50 });
    assert.equal(p.logStartOffset, 2n);
    assert.equal(p.latestOffsetOf(Buffer.from('a')), 2n);
    assert.equal(p.latestOffsetOf(Buffer.from('b')), null);
    await store.close();
  });
});

describe('cache store: truncation, reset, reopen', () => {
  it('truncateBefore drops the head and moves the log start', async () => {
    const store = CacheStore.open(tempDir());
    const p = store.partition('t', 0);
    p.append(
      Array.from({ length: 5000 }, (_, i) => rec(i, { key: Buffer.from(`k${i % 10}`), timestamp: i })),
    );
    const r = await p.truncateBefore(4995n);
    assert.equal(r.removedRecords, 4995);
    assert.equal(r.logStartOffset, 4995n);
    assert.deepEqual(
      readAll(p).map((x) => x.offset),
      [4995n, 4996n, 4997n, 4998n, 4999n],
    );
    assert.equal(p.latestOffsetOf(Buffer.from('k5')), 4995n);
    assert.equal(p.latestOffsetOf(Buffer.from('k0')), null);
    assert.equal(p.offsetForTimestamp(0), 4995n);
    // Past the end: the next fetch starts at the new log start.
    await p.truncateBefore(7000n);
    assert.equal(p.nextOffset, 7000n);
    assert.equal(p.stats().records, 0);
    assert.deepEqual(p.read(0n), { records: [], nextOffset: 7000n });
    await store.close();
  });

  it('reset empties a recreated topic and reclaims its records', async () => {
    const dir = tempDir();
    let store = CacheStore.open(dir);
    let p = store.partition('t', 0);
    assert.equal(p.bindTopicId('id-1'), true);
    assert.equal(p.bindTopicId('id-1'), true);
    assert.equal(p.bindTopicId('id-2'), false);
    p.append(Array.from({ length: 3000 }, (_, i) => rec(i, { key: Buffer.from(`k${i}`), timestamp: i })));
    await p.reset('id-2');
    assert.equal(p.topicId, 'id-2');
    assert.equal(p.nextOffset, 0n);
    assert.equal(p.stats().records, 0);
    assert.equal(p.latestOffsetOf(Buffer.from('k1')), null);
    assert.equal(p.offsetForTimestamp(0), null);
    assert.equal(await store.reclaim(), 0);
    p.append([rec(0, { key: Buffer.from('k1') })]);
    assert.equal(p.latestOffsetOf(Buffer.from('k1')), 0n);
    await store.close();
    store = CacheStore.open(dir);
    p = store.partition('t', 0);
    assert.equal(p.topicId, 'id-2');
    assert.equal(readAll(p).length, 1);
    assert.equal(store.stats().records, 1);
    await store.close();
  });

  it('reopens after a clean close with metadata, index and data intact', async () => {
    const dir = tempDir();
    let store = CacheStore.open(dir);
    let p = store.partition('t', 3);
    p.append(
      Array.from({ length: 100 }, (_, i) => rec(i, { key: Buffer.from(`k${i % 7}`), timestamp: 10 * i })),
      { highWatermark: 120n, lastStableOffset: 110n },
    );
    p.bindTopicId('abc');
    await p.truncateBefore(10n);
    const before = p.stats();
    await store.close();
    assert.throws(() => p.read(0n), /closed/);
    store = CacheStore.open(dir);
    p = store.partition('t', 3);
    assert.deepEqual(p.stats(), before);
    assert.equal(p.latestOffsetOf(Buffer.from('k3')), 94n);
    assert.equal(p.offsetForTimestamp(555), 56n);
    assert.equal(p.append([rec(100)]).nextOffset, 101n);
    await store.close();
  });
});
