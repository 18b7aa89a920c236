import { strict as assert } from 'node:assert';
import { after, describe, it } from 'node:test';
import {
  formatProgress,
  parseProgress,
  type CacheMessage,
} from '../../src/bindings/kafka/cache_client/index.ts';
import { CacheStream as StreamClass } from '../../src/bindings/kafka/cache_client/stream.ts';
import { rec, StreamReader, values } from '../support/cache-stream.ts';
import { closeFakeTopics, FakeCacheServer, FakeTopic, fakeStream } from '../support/fake-cache.ts';

after(closeFakeTopics);

const open = fakeStream;

const text = (b: Buffer | null): string | null => (b === null ? null : b.toString());
const at = (m: CacheMessage): string => `${m.partition}:${m.offset}`;

describe('cache_client stream: starting points', () => {
  it('replays a delete topic from its log start with historical', async () => {
    const t = new FakeTopic('hist');
    t.append(0, values(0, 10));
    const r = new StreamReader(open(t));
    const got = await r.take(10);
    assert.deepEqual(
      got.map((m) => text(m.value)),
      values(0, 10).map((x) => text(x.value)),
    );
    assert.equal(got[9]?.progress.get(0), 10n);
    assert.ok(await r.idle());
    t.append(0, values(10, 2));
    assert.deepEqual((await r.take(2)).map(at), ['0:10', '0:11']);
    r.stream.close();
  });

  it('starts at the head at open with live, and delivers what comes after', async () => {
    const t = new FakeTopic('live', { defaultOffset: 'live', partitions: 2 });
    t.append(0, values(0, 5));
    t.append(1, values(0, 3));
    const r = new StreamReader(open(t));
    assert.deepEqual(r.stream.progress, new Map([]));
    assert.ok(await r.idle());
    assert.deepEqual(
      r.stream.progress,
      new Map([
        [0, 5n],
        [1, 3n],
      ]),
    );
    t.append(1, values(3, 1));
    t.append(0, values(5, 1));
    const got = await r.take(2);
    assert.deepEqual(got.map(at).sort(), ['0:5', '1:3']);
    r.stream.close();
  });

  it('takes the per-open defaultOffset over the topic default', async () => {
    const t = new FakeTopic('override', { defaultOffset: 'live' });
    t.append(0, values(0, 3));
    const r = new StreamReader(open(t, { defaultOffset: 'historical' }));
    assert.deepEqual((await r.take(3)).map(at), ['0:0', '0:1', '0:2']);
    r.stream.close();
  });

  it('resumes exactly at the progress given, with no loss and no duplicate', async () => {
    const t = new FakeTopic('resume', { partitions: 3 });
    for (let p = 0; p < 3; p++) t.append(p, values(0, 20, `p${p}-`));
    const first = new StreamReader(open(t));
    const seen = await first.take(25);
    const progress = seen[seen.length - 1]?.progress;
    assert.ok(progress);
    first.stream.close();
    const token = formatProgress(progress);
    const second = new StreamReader(open(t, { partitions: parseProgress(token) }));
    const rest = await second.take(60 - 25);
    assert.ok(await second.idle());
    const all = [...seen, ...rest].map(at).sort();
    assert.equal(new Set(all).size, 60);
    second.stream.close();

    // The record form with string offsets, as an HTTP client would send it.
    const record: Record<number, string> = {};
    for (const [p, o] of progress) record[p] = o.toString();
    const third = new StreamReader(open(t, { partitions: record }));
    assert.deepEqual((await third.take(35)).map(at).sort(), rest.map(at).sort());
    third.stream.close();
  });

  it('continues from the log start when the progress is below it', async () => {
    const t = new FakeTopic('below');
    t.append(0, values(0, 10));
    await t.store(0).truncateBefore(6n);
    const r = new StreamReader(open(t, { partitions: { 0: 2n } }));
    assert.deepEqual((await r.take(4)).map(at), ['0:6', '0:7', '0:8', '0:9']);
    r.stream.close();
  });

  it('reads a partition missing from the progress from its log start', async () => {
    const t = new FakeTopic('missing', { partitions: 2, defaultOffset: 'live' });
    t.append(0, values(0, 3));
    t.append(1, values(0, 3));
    const r = new StreamReader(open(t, { partitions: { 0: 3n } }));
    assert.deepEqual((await r.take(3)).map(at), ['1:0', '1:1', '1:2']);
    assert.ok(await r.idle());
    r.stream.close();
  });

  it('drops partitions the topic does not have from a resume, and starts one past its end at the end', async () => {
    const t = new FakeTopic('forged', { partitions: 2 });
    t.append(0, values(0, 3));
    t.append(1, values(0, 3));
    // What a client could write into a Last-Event-ID: a partition the topic never had, and
    // offsets no record will reach.
    const forged = new Map([
      [0, 2n],
      [1, 2n ** 62n],
      [7, 5n],
      [999_999, 1n],
    ]);
    const r = new StreamReader(open(t, { partitions: forged }));
    assert.deepEqual((await r.take(1)).map(at), ['0:2']);
    assert.ok(await r.idle());
    assert.deepEqual(
      [...r.stream.progress],
      [
        [0, 3n],
        [1, 3n],
      ],
    );
    // Partition 1 was started at its end: what comes next is delivered, not waited past.
    t.append(1, values(3, 1));
    const [next] = await r.take(1);
    assert.equal(next && at(next), '1:3');
    assert.deepEqual(
      [...(next?.progress ?? [])],
      [
        [0, 3n],
        [1, 4n],
      ],
    );
    r.stream.close();
  });

  it('starts as a fresh stream would when a resume names no partition the topic has', async () => {
    const t = new FakeTopic('forged-all', { defaultOffset: 'live' });
    t.append(0, values(0, 3));
    const r = new StreamReader(open(t, { partitions: new Map([[5, 1n]]) }));
    assert.ok(await r.idle());
    assert.deepEqual([...r.stream.progress], [[0, 3n]]);
    r.stream.close();
  });

  it('rejects progress that is not an offset', () => {
    const t = new FakeTopic('badprogress');
    assert.throws(() => open(t, { partitions: { 0: 'ten' } }), /not an offset/);
    assert.throws(() => parseProgress('0:1,x'), /not partition:offset/);
  });
});

describe('cache_client stream: compacted topics', () => {
  function fill(t: FakeTopic): void {
    t.append(0, [
      rec(0, 'a', 'a1'),
      rec(1, 'b', 'b1'),
      rec(2, 'a', 'a2'),
      rec(3, 'c', 'c1'),
      rec(4, 'b', null),
      rec(5, 'd', 'd1'),
      rec(6, 'a', 'a3'),
    ]);
  }

  it('gives a new consumer the latest value of every key, then goes live with tombstones', async () => {
    const t = new FakeTopic('compact', { compacted: true, defaultOffset: 'live' });
    fill(t);
    const r = new StreamReader(open(t));
    const snapshot = await r.take(3);
    assert.deepEqual(
      snapshot.map((m) => `${text(m.key)}=${text(m.value)}`),
      ['c=c1', 'd=d1', 'a=a3'],
    );
    assert.equal(snapshot[2]?.progress.get(0), 7n);
    assert.ok(await r.idle());
    t.append(0, [rec(7, 'c', null), rec(8, 'e', 'e1')]);
    const live = await r.take(2);
    assert.deepEqual(
      live.map((m) => `${text(m.key)}=${text(m.value)}`),
      ['c=null', 'e=e1'],
    );
    r.stream.close();
  });

  it('skips values replaced while the consumer was behind the head', async () => {
    const t = new FakeTopic('conflate', { compacted: true });
    t.append(0, [rec(0, 'a', 'a1'), rec(1, 'b', 'b1')]);
    const r = new StreamReader(open(t));
    assert.deepEqual(
      (await r.take(2)).map((m) => text(m.value)),
      ['a1', 'b1'],
    );
    t.append(0, [
      rec(2, 'a', 'a2'),
      rec(3, 'a', 'a3'),
      rec(4, 'b', null),
      rec(5, 'b', 'b2'),
      rec(6, 'a', 'a4'),
    ]);
    assert.deepEqual(
      (await r.take(2)).map((m) => text(m.value)),
      ['b2', 'a4'],
    );
    assert.deepEqual(r.stream.progress, new Map([[0, 7n]]));
    r.stream.close();
  });

  it('delivers tombstones that are still the latest to a resumed consumer', async () => {
    const t = new FakeTopic('resumed-compact', { compacted: true });
    fill(t);
    const r = new StreamReader(open(t, { partitions: { 0: 3n } }));
    assert.deepEqual(
      (await r.take(4)).map((m) => `${text(m.key)}=${text(m.value)}`),
      ['c=c1', 'b=null', 'd=d1', 'a=a3'],
    );
    r.stream.close();
  });
});

describe('cache_client stream: merging partitions', () => {
  it('interleaves partitions round-robin, keeping order within each', async () => {
    const t = new FakeTopic('merge', { partitions: 3 });
    t.append(0, values(0, 6, 'a'));
    t.append(1, values(0, 2, 'b'));
    t.append(2, values(0, 4, 'c'));
    const got = await new StreamReader(open(t)).take(12);
    assert.deepEqual(got.slice(0, 6).map(at), ['0:0', '1:0', '2:0', '0:1', '1:1', '2:1']);
    for (let p = 0; p < 3; p++) {
      const offsets = got.filter((m) => m.partition === p).map((m) => m.offset);
      assert.deepEqual(
        offsets,
        [...offsets].sort((x, y) => (x < y ? -1 : 1)),
      );
    }
    assert.deepEqual(got.slice(6).map(at), ['0:2', '2:2', '0:3', '2:3', '0:4', '0:5']);
  });

  it('streams ready partitions while another is not ready, and adds it once ready', async () => {
    const t = new FakeTopic('notready', { partitions: 2, notReady: [1] });
    t.append(0, values(0, 3));
    t.append(1, values(0, 2));
    const r = new StreamReader(open(t));
    assert.deepEqual((await r.take(3)).map(at), ['0:0', '0:1', '0:2']);
    assert.ok(await r.idle());
    assert.equal(r.stream.progress.has(1), false);
    t.setReady(1);
    assert.deepEqual((await r.take(2)).map(at), ['1:0', '1:1']);
    r.stream.close();
  });

  it('gives a live partition that becomes ready later its head at that time', async () => {
    const t = new FakeTopic('notready-live', { partitions: 2, notReady: [1], defaultOffset: 'live' });
    t.append(1, values(0, 4));
    const r = new StreamReader(open(t));
    assert.ok(await r.idle());
    t.setReady(1);
    assert.ok(await r.idle());
    assert.equal(r.stream.progress.get(1), 4n);
    t.append(1, values(4, 1));
    assert.deepEqual((await r.take(1)).map(at), ['1:4']);
    r.stream.close();
  });

  it('starts a live partition that was not ready at open at the broker end given for it', async () => {
    const t = new FakeTopic('notready-live-end', { partitions: 2, notReady: [1], defaultOffset: 'live' });
    // The broker held 2 records at open; the cache's first fetch brings those and 3 produced since.
    const stream = new StreamClass({
      topic: t,
      exit: new FakeCacheServer(),
      options: {},
      defaultOffset: 'live',
      liveStarts: new Map([[1, 2n]]),
    });
    const r = new StreamReader(stream);
    assert.ok(await r.idle());
    t.append(1, values(0, 5));
    t.setReady(1);
    assert.deepEqual((await r.take(3)).map(at), ['1:2', '1:3', '1:4']);
    r.stream.close();
  });

  it('takes in new partitions from their start, even when live', async () => {
    const t = new FakeTopic('grow', { partitions: 1, defaultOffset: 'live' });
    const r = new StreamReader(open(t));
    assert.ok(await r.idle());
    t.grow(2);
    t.append(1, values(0, 2));
    assert.deepEqual((await r.take(2)).map(at), ['1:0', '1:1']);
    r.stream.close();
  });

  it('ends a batch at its byte bound, after at least one message, and loses none', async () => {
    const t = new FakeTopic('batch-bytes');
    t.append(0, values(0, 10, 'x'.repeat(100)));
    const s = open(t);
    const sizes: number[] = [];
    const seen: string[] = [];
    while (seen.length < 10) {
      const batch = await s.nextBatch(256, 250);
      sizes.push(batch.length);
      seen.push(...batch.map(at));
    }
    assert.deepEqual(sizes, [3, 3, 3, 1]);
    assert.deepEqual(
      seen,
      values(0, 10).map((r) => `0:${r.offset}`),
    );
    s.close();
  });

  it('lets go of partitions a partitions change no longer lists, with their progress', async () => {
    const t = new FakeTopic('shrink', { partitions: 3 });
    for (const p of [0, 1, 2]) t.append(p, values(0, 2));
    const r = new StreamReader(open(t));
    assert.equal((await r.take(6)).length, 6);
    assert.deepEqual([...r.stream.progress.keys()].sort(), [0, 1, 2]);
    t.shrink(2);
    assert.deepEqual([...r.stream.progress.keys()].sort(), [0, 1]);
    t.append(2, values(2, 2));
    t.append(1, values(2, 1));
    assert.deepEqual((await r.take(1)).map(at), ['1:2']);
    assert.ok(await r.idle(), 'nothing of the vanished partition');
    r.stream.close();
  });

  it('wakes a waiting reader when records are appended', async () => {
    const t = new FakeTopic('wake', { partitions: 2 });
    const r = new StreamReader(open(t));
    const waiting = r.take(1);
    setTimeout(() => t.append(1, values(0, 1)), 20);
    assert.deepEqual((await waiting).map(at), ['1:0']);
    r.stream.close();
  });

  it('serves concurrent next() calls one message each, in order', async () => {
    const t = new FakeTopic('concurrent');
    t.append(0, values(0, 5));
    const s = open(t);
    const got = await Promise.all([s.next(), s.next(), s.next()]);
    assert.deepEqual(
      got.map((g) => (g.done === true ? 'end' : at(g.value))),
      ['0:0', '0:1', '0:2'],
    );
    s.close();
  });
});

describe('cache_client stream: isolation', () => {
  function txn(t: FakeTopic): void {
    t.append(
      0,
      [
        rec(0, 'k', 'plain'),
        rec(1, 'k', 'aborted', { transactional: true, aborted: true, producerId: 7n }),
        rec(2, null, 'marker', { control: true, producerId: 7n }),
        rec(3, 'k', 'committed', { transactional: true, producerId: 8n }),
        rec(4, null, 'marker', { control: true, producerId: 8n }),
        rec(5, 'k', 'open', { transactional: true, producerId: 9n }),
      ],
      { lastStableOffset: 5n },
    );
  }

  it('read_committed skips aborted and control records and stops at the stable offset', async () => {
    const t = new FakeTopic('committed');
    txn(t);
    const r = new StreamReader(open(t));
    assert.deepEqual(
      (await r.take(2)).map((m) => text(m.value)),
      ['plain', 'committed'],
    );
    assert.ok(await r.idle());
    assert.equal(r.stream.progress.get(0), 5n);
    t.setStable(0, 6n);
    assert.deepEqual(
      (await r.take(1)).map((m) => text(m.value)),
      ['open'],
    );
    r.stream.close();
  });

  it('read_uncommitted delivers aborted and unstable records but never control records', async () => {
    const t = new FakeTopic('uncommitted');
    txn(t);
    const r = new StreamReader(open(t, { isolation: 'read_uncommitted' }));
    assert.deepEqual(
      (await r.take(4)).map((m) => text(m.value)),
      ['plain', 'aborted', 'committed', 'open'],
    );
    assert.ok(await r.idle());
    r.stream.close();
  });
});

describe('cache_client stream: filters and progress', () => {
  function keyed(t: FakeTopic, count: number): void {
    t.append(
      0,
      Array.from({ length: count }, (_, i) =>
        rec(i, `k${i % 3}`, `v${i}`, {
          headers: [{ name: 'parity', value: Buffer.from(i % 2 ? 'odd' : 'even') }],
        }),
      ),
    );
  }

  it('delivers matching records with their filter bits; progress covers skipped ones', async () => {
    const t = new FakeTopic('filters');
    keyed(t, 9);
    const r = new StreamReader(
      open(t, {
        filters: [[{ key: Buffer.from('k1') }], [{ header: { name: 'parity', value: Buffer.from('odd') } }]],
      }),
    );
    const got = await r.take(5);
    assert.deepEqual(
      got.map((m) => [Number(m.offset), m.filters]),
      [
        [1, 0b11],
        [3, 0b10],
        [4, 0b01],
        [5, 0b10],
        [7, 0b11],
      ],
    );
    assert.equal(got[0]?.progress.get(0), 2n);
    assert.ok(await r.idle());
    assert.equal(r.stream.progress.get(0), 9n, 'progress passed the filtered-out tail');
    r.stream.close();
  });

  it('changes filters on a live stream', async () => {
    const t = new FakeTopic('setfilters');
    keyed(t, 6);
    const r = new StreamReader(open(t, { filters: [[{ key: Buffer.from('k0') }]] }));
    assert.deepEqual((await r.take(1)).map(at), ['0:0']);
    r.stream.setFilters([[{ key: Buffer.from('k2') }]]);
    assert.deepEqual((await r.take(2)).map(at), ['0:2', '0:5']);
    r.stream.setFilters(undefined);
    t.append(0, [rec(6, 'x', 'y')]);
    const [m] = await r.take(1);
    assert.equal(m?.filters, 0);
    r.stream.close();
  });

  it('finds a rare match behind many filtered-out records without blocking the event loop', async () => {
    const t = new FakeTopic('rare');
    const n = 20_000;
    for (let start = 0; start < n; start += 5000)
      t.append(
        0,
        Array.from({ length: 5000 }, (_, i) => rec(start + i, 'noise', 'x')),
      );
    t.append(0, [rec(n, 'needle', 'found')]);
    const s = open(t, { filters: [[{ key: Buffer.from('needle') }]] });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    const got = await new StreamReader(s).take(1, 10_000);
    clearInterval(timer);
    assert.equal(text(got[0]?.value ?? null), 'found');
    assert.ok(ticks > 0, 'timers ran while the stream scanned');
    s.close();
  });
  it("does not let one partition's filtered-out run hold back another partition", async () => {
    const t = new FakeTopic('rare-fair', { partitions: 2 });
    const n = 50_000;
    for (let start = 0; start < n; start += 10_000)
      t.append(
        0,
        Array.from({ length: 10_000 }, (_, i) => rec(start + i, 'noise', 'x')),
      );
    t.append(1, [rec(0, 'needle', 'found')]);
    const s = open(t, { filters: [[{ key: Buffer.from('needle') }]] });
    const [m] = await new StreamReader(s).take(1, 10_000);
    assert.equal(m?.partition, 1);
    assert.ok(
      (m?.progress.get(0) ?? 0n) < BigInt(n),
      'partition 1 was served before partition 0 was scanned',
    );
    s.close();
  });
});

describe('cache_client stream: memory, truncation, errors, close', () => {
  it('reads only as the consumer pulls, within a bounded buffer', async () => {
    const t = new FakeTopic('bounded', { partitions: 32 });
    const big = Buffer.alloc(8 * 1024, 1);
    for (let p = 0; p < 32; p++)
      t.append(
        p,
        Array.from({ length: 40 }, (_, i) => ({ ...rec(i, null, null), value: big })),
      );
    const s = open(t);
    assert.equal(s.bufferedBytes, 0);
    let peak = 0;
    const r = new StreamReader(s);
    for (let i = 0; i < 32 * 40; i += 64) {
      await r.take(Math.min(64, 32 * 40 - i));
      peak = Math.max(peak, s.bufferedBytes);
    }
    assert.ok(peak <= 1024 * 1024 + 64 * 1024, `peak ${peak}`);
    s.close();
    assert.equal(s.bufferedBytes, 0);
  });

  it('moves a cursor behind the new log start after truncation', async () => {
    const t = new FakeTopic('truncate');
    t.append(0, values(0, 200));
    const r = new StreamReader(open(t));
    assert.deepEqual((await r.take(1)).map(at), ['0:0']);
    await t.store(0).truncateBefore(150n);
    t.emit({ type: 'truncated', partition: 0, logStartOffset: 150n });
    assert.deepEqual((await r.take(1)).map(at), ['0:150']);
    r.stream.close();
  });

  it('rejects the waiting reader with the topic error, then ends', async () => {
    const t = new FakeTopic('error');
    const s = open(t);
    const waiting = s.next();
    t.emit({ type: 'error', error: new Error('topic deleted') });
    await assert.rejects(waiting, /topic deleted/);
    assert.deepEqual(await s.next(), { done: true, value: undefined });
    assert.equal(t.released, 1);
  });

  it('ends a waiting reader on close and releases its attachment once', async () => {
    const t = new FakeTopic('close');
    const s = open(t);
    assert.equal(t.listeners, 1);
    const waiting = s.next();
    s.close();
    s.close();
    assert.deepEqual(await waiting, { done: true, value: undefined });
    assert.equal(t.released, 1);
    assert.equal(t.listeners, 0);
  });

  it('ends a for-await loop on break', async () => {
    const t = new FakeTopic('break');
    t.append(0, values(0, 5));
    const s = open(t);
    let n = 0;
    for await (const m of s) {
      n++;
      if (m.offset === 2n) break;
    }
    assert.equal(n, 3);
    assert.equal(s.closed, true);
  });
});
