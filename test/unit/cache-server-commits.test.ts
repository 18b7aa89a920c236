import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CacheStore } from '../../src/bindings/kafka/cache/index.ts';
import type { RecordInput } from '../../src/bindings/kafka/cache/index.ts';
import { CommitCoalescer } from '../../src/bindings/kafka/cache_server/commits.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'kgate-commits-'));
  dirs.push(d);
  return d;
}

function recs(from: number, count: number, size = 10): RecordInput[] {
  return Array.from({ length: count }, (_, i) => ({
    offset: BigInt(from + i),
    timestamp: 1000,
    key: null,
    value: Buffer.alloc(size, i),
  }));
}

describe('cache_server commit coalescer', () => {
  it('commits appends of several partitions queued together once, and only then resolves them', async () => {
    const store = CacheStore.open(tempDir());
    const commits = new CommitCoalescer(store, 1024 * 1024);
    const parts = [0, 1, 2, 3].map((p) => store.partition('t', p));
    const done = parts.map((p) => commits.append(p, recs(0, 5), { highWatermark: 5n }));
    for (const p of parts) assert.equal(p.nextOffset, 0n, 'nothing is visible before the commit');
    const results = await Promise.all(done);
    assert.deepEqual(
      results.map((r) => r.nextOffset),
      [5n, 5n, 5n, 5n],
    );
    assert.equal(commits.commits, 1);
    assert.equal(commits.appends, 4);
    for (const p of parts) assert.equal(p.highWatermark, 5n);
    await store.close();
  });

  it('bounds a commit by bytes and keeps each partition in order', async () => {
    const dir = tempDir();
    let store = CacheStore.open(dir);
    const commits = new CommitCoalescer(store, 3000);
    const a = store.partition('t', 0);
    const b = store.partition('t', 1);
    const feed = async (p: typeof a): Promise<void> => {
      for (let i = 0; i < 10; i++) await commits.append(p, recs(i * 4, 4, 500), {});
    };
    await Promise.all([feed(a), feed(b)]);
    assert.equal(a.nextOffset, 40n);
    assert.equal(b.nextOffset, 40n);
    assert.ok(commits.commits > 10, `at most one append per partition fits a commit: ${commits.commits}`);
    assert.equal(commits.appends, 20);
    await store.close();
    store = CacheStore.open(dir);
    assert.equal(store.partition('t', 0).read(0n, { maxRecords: 100 }).records.length, 40);
    assert.equal(store.partition('t', 1).read(0n, { maxRecords: 100 }).records.length, 40);
    await store.close();
  });

  it('bounds a commit by records too, so small records cannot make one commit hold the event loop', async () => {
    const store = CacheStore.open(tempDir());
    const commits = new CommitCoalescer(store, 1024 * 1024 * 1024, undefined, 10);
    const parts = [0, 1, 2, 3].map((p) => store.partition('t', p));
    await Promise.all(parts.map((p) => commits.append(p, recs(0, 4, 10), {})));
    assert.equal(commits.commits, 2, 'two appends of 4 records fit 10, a third does not');
    for (const p of parts) assert.equal(p.nextOffset, 4n);
    await store.close();
  });

  it('commits an append larger than a commit in parts, its watermarks with the last', async () => {
    const store = CacheStore.open(tempDir());
    // 532 bytes a record as the coalescer counts them: three fit 1,600 bytes.
    const commits = new CommitCoalescer(store, 1600);
    const part = store.partition('t', 0);
    const seen: bigint[] = [];
    const done = commits.append(part, recs(0, 10, 500), { highWatermark: 12n, nextOffset: 11n });
    while (part.nextOffset < 10n) {
      await new Promise((resolve) => setImmediate(resolve));
      seen.push(part.nextOffset);
      if (part.nextOffset < 10n)
        assert.equal(part.highWatermark, 0n, 'the watermarks come with the last part');
    }
    const result = await done;
    assert.deepEqual(result, { appended: 10, nextOffset: 11n });
    assert.equal(commits.commits, 4, 'three, three, three and one record');
    assert.equal(commits.appends, 1);
    assert.equal(part.highWatermark, 12n);
    assert.deepEqual(
      part.read(0n, { maxRecords: 100 }).records.map((r) => r.offset),
      Array.from({ length: 10 }, (_, i) => BigInt(i)),
    );
    assert.ok(seen.includes(3n) && seen.includes(6n), `committed in parts: ${seen.join(', ')}`);
    await store.close();
  });

  it('commits nothing for an empty append that changes no watermark, and still commits one that does', async () => {
    const store = CacheStore.open(tempDir());
    const commits = new CommitCoalescer(store, 1024 * 1024);
    const part = store.partition('t', 0);
    await commits.append(part, recs(0, 3), { highWatermark: 3n, lastStableOffset: 3n });
    assert.equal(commits.commits, 1);
    const idle = await commits.append(part, [], { nextOffset: 3n, highWatermark: 3n, lastStableOffset: 3n });
    assert.deepEqual(idle, { appended: 0, nextOffset: 3n });
    assert.equal(commits.commits, 1, 'an idle fetch result costs no commit');
    await commits.append(part, [], { highWatermark: 5n });
    assert.equal(commits.commits, 2);
    assert.equal(part.highWatermark, 5n);
    await commits.append(part, [], { nextOffset: 7n });
    assert.equal(commits.commits, 3, 'a gap at the end moves nextOffset and is stored');
    assert.equal(part.nextOffset, 7n);
    await store.close();
  });

  it('rejects a failing append alone and commits the rest', async () => {
    const store = CacheStore.open(tempDir());
    const commits = new CommitCoalescer(store, 1024 * 1024);
    const a = store.partition('t', 0);
    const b = store.partition('t', 1);
    const tooLate = { offset: 2n, timestamp: 2 ** 50, key: null, value: null };
    const bad = commits.append(a, [...recs(0, 2), tooLate], {});
    const good = commits.append(b, recs(0, 3), {});
    await assert.rejects(bad, RangeError);
    assert.equal((await good).nextOffset, 3n);
    assert.equal(a.nextOffset, 0n);
    assert.equal(commits.commits, 1);
    await store.close();
  });

  it('flush commits what is queued at once, and a closed store rejects', async () => {
    const store = CacheStore.open(tempDir());
    const commits = new CommitCoalescer(store, 1024 * 1024);
    const a = store.partition('t', 0);
    const queued = commits.append(a, recs(0, 2), {});
    commits.flush();
    assert.equal(a.nextOffset, 2n);
    await queued;
    await store.close();
    await assert.rejects(commits.append(a, recs(2, 1), {}), /closed/);
  });
});
