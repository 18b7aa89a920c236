import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { CacheStore } from '../../src/bindings/kafka/cache/index.ts';
import type { RecordInput } from '../../src/bindings/kafka/cache/index.ts';
import { readAll, rec, removeTempDirs, tempDir } from '../support/cache-store.ts';

// The store's maintenance: compaction against a reference model, expiry by time and bytes,
// truncation, reset of a recreated topic, and reopening what it left behind.

after(removeTempDirs);

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

  it('evictBefore marks what the source may still hold until the source drops it too', async () => {
    const dir = tempDir();
    let store = CacheStore.open(dir);
    let p = store.partition('t', 0);
    p.append(Array.from({ length: 100 }, (_, i) => rec(i, { timestamp: 1000 + i })));
    assert.equal(p.evicted, false);
    const r = await p.evictBefore(40n);
    assert.equal(r.removedRecords, 40);
    assert.equal(p.logStartOffset, 40n);
    assert.equal(p.evicted, true);
    // The source still starts below the cache: the mark stays, and survives a reopen.
    p.sourceLogStart(0n);
    p.sourceLogStart(39n);
    assert.equal(p.evicted, true);
    await store.close();
    store = CacheStore.open(dir);
    p = store.partition('t', 0);
    assert.equal(p.evicted, true);
    assert.equal(p.logStartOffset, 40n);
    // Expiry follows the source's retention, which says nothing of what the source holds now.
    await p.expire({ retentionMs: 10, segmentBytes: 100, now: 1060 });
    assert.ok(p.logStartOffset > 40n);
    assert.equal(p.evicted, true);
    // The source's log start reaching the cache's: nothing evicted is held upstream any more.
    p.sourceLogStart(p.logStartOffset);
    assert.equal(p.evicted, false);
    await p.evictBefore(80n);
    assert.equal(p.evicted, true);
    // The broker moving its log start past the cache's drops the head, and the mark with it.
    await p.truncateBefore(85n);
    assert.equal(p.evicted, false);
    await p.evictBefore(90n);
    await p.reset('new-id');
    assert.equal(p.evicted, false);
    await store.close();
    store = CacheStore.open(dir);
    assert.equal(store.partition('t', 0).evicted, false);
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

  it('drop forgets a partition of a deleted topic, and a later write starts it afresh', async () => {
    const dir = tempDir();
    let store = CacheStore.open(dir);
    const p = store.partition('t', 0);
    const kept = store.partition('t', 1);
    assert.equal(p.bindTopicId('id-1'), true);
    kept.append([rec(0)]);
    p.append(Array.from({ length: 3000 }, (_, i) => rec(i, { key: Buffer.from(`k${i}`), timestamp: i })));
    const reader = CacheStore.open(dir, { reader: true });
    const seen = reader.partition('t', 0);
    seen.reload();
    assert.equal(seen.nextOffset, 3000n);
    const dropping = p.drop();
    // Gone from every listing at once; the records go in the background.
    assert.deepEqual(store.partitions(), [{ topic: 't', partition: 1 }]);
    assert.equal(p.dropped, true);
    assert.equal(p.nextOffset, 0n);
    assert.equal(p.topicId, '');
    assert.deepEqual(p.read(0n).records, []);
    assert.equal(p.latestOffsetOf(Buffer.from('k1')), null);
    // Maintenance that listed it before the drop neither fails nor brings it back.
    assert.equal((await p.truncateBefore(10n)).removedRecords, 0);
    assert.equal((await p.expire({ retentionMs: 0, now: 10_000 })).removedRecords, 0);
    assert.deepEqual(store.partitions(), [{ topic: 't', partition: 1 }]);
    await dropping;
    assert.equal(await store.reclaim(), 0);
    reader.refresh();
    seen.reload();
    assert.equal(seen.nextOffset, 0n);
    assert.deepEqual(seen.read(0n).records, []);
    // The topic is created again: the same store object is fed under the new id.
    assert.equal(p.bindTopicId('id-2'), true);
    p.append([rec(0, { key: Buffer.from('k1') })]);
    assert.equal(p.dropped, false);
    assert.equal(p.latestOffsetOf(Buffer.from('k1')), 0n);
    assert.deepEqual(
      store.partitions().sort((a, b) => a.partition - b.partition),
      [
        { topic: 't', partition: 0 },
        { topic: 't', partition: 1 },
      ],
    );
    await reader.close();
    await store.close();
    store = CacheStore.open(dir);
    assert.equal(store.partition('t', 0).topicId, 'id-2');
    assert.equal(readAll(store.partition('t', 0)).length, 1);
    assert.equal(store.stats().records, 2);
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
