import { strict as assert } from 'node:assert';
import { after, describe, it } from 'node:test';
import {
  HeadReader,
  lookupKey,
  NotCaughtUpError,
  type Filter,
  type KeyLookup,
} from '../../src/bindings/kafka/cache_client/index.ts';
import { partitionForKey } from '../../src/bindings/kafka/cache_server/murmur2.ts';
import { closeFakeTopics, FakeTopic, fakeStream } from '../support/fake-cache.ts';

after(closeFakeTopics);

const PARTITIONS = 4;

/** A compacted topic over real partition stores, fed by the test instead of a broker. */
function itemsTopic(notReady: number[] = []): FakeTopic {
  return new FakeTopic('items', { partitions: PARTITIONS, compacted: true, notReady });
}

/** A key whose default partition is `partition`, so tests can say where a key "belongs". */
function keyIn(partition: number, prefix: string): string {
  for (let i = 0; ; i++) {
    const key = `${prefix}-${i}`;
    if (partitionForKey(key, PARTITIONS) === partition) return key;
  }
}

const key = (k: string): Buffer => Buffer.from(k);
const valueOf = (found: KeyLookup): string | undefined => found.message?.value?.toString();
const header = (name: string, value: string): Filter => [{ header: { name, value: Buffer.from(value) } }];

function ends(topic: FakeTopic): Map<number, bigint> {
  return new Map(topic.partitions().map((p) => [p, topic.store(p).nextOffset]));
}

describe('cache_client key lookup', () => {
  it('finds a key in its default partition, with the progress of a read up to now', async () => {
    const topic = itemsTopic();
    const k = keyIn(2, 'a');
    topic.put(2, k, 'one');
    topic.put(0, keyIn(0, 'other'), 'x');
    topic.put(2, k, 'two');
    const found = await lookupKey(topic, key(k));
    assert.equal(valueOf(found), 'two');
    assert.equal(found.message?.partition, 2);
    assert.equal(found.message?.offset, 1n);
    assert.equal(found.changed, true);
    assert.deepEqual(found.progress, ends(topic));
  });

  it('answers null for a key never written and for a tombstoned key', async () => {
    const topic = itemsTopic();
    const k = keyIn(1, 'gone');
    topic.put(1, k, 'alive');
    topic.put(1, k, null);
    assert.equal((await lookupKey(topic, key(k))).message, null);
    assert.equal((await lookupKey(topic, key('never'))).message, null);
    assert.deepEqual((await lookupKey(topic, key('never'))).progress, ends(topic));
  });

  it('finds a key produced to a partition other than its default one', async () => {
    const topic = itemsTopic();
    const k = keyIn(0, 'moved');
    topic.put(3, k, 'explicit');
    const found = await lookupKey(topic, key(k));
    assert.equal(valueOf(found), 'explicit');
    assert.equal(found.message?.partition, 3);
  });

  it('takes the latest by timestamp when several partitions hold the key', async () => {
    const topic = itemsTopic();
    const k = keyIn(1, 'twice');
    topic.put(1, k, 'older', { timestamp: 5_000 });
    topic.put(3, k, 'newer', { timestamp: 6_000 });
    assert.equal(valueOf(await lookupKey(topic, key(k))), 'newer');
    topic.put(0, k, null, { timestamp: 7_000 });
    assert.equal((await lookupKey(topic, key(k))).message, null);
    // Same timestamp: the partition the default partitioner picks for the key wins.
    const tie = keyIn(2, 'tie');
    topic.put(3, tie, 'elsewhere', { timestamp: 9_000 });
    topic.put(2, tie, 'default', { timestamp: 9_000 });
    assert.equal(valueOf(await lookupKey(topic, key(tie))), 'default');
  });

  it('applies header conditions to the key’s latest record only', async () => {
    const topic = itemsTopic();
    const k = keyIn(0, 'h');
    topic.put(0, k, 'for a', { headers: [{ name: 'tenant', value: Buffer.from('a') }] });
    let found = await lookupKey(topic, key(k), { conditions: header('tenant', 'a') });
    assert.equal(valueOf(found), 'for a');
    assert.equal(found.message?.filters, 1);
    assert.equal((await lookupKey(topic, key(k), { conditions: header('tenant', 'b') })).message, null);
    // The older record matched, but it is superseded: a stream would skip it as well.
    topic.put(0, k, 'for b', { headers: [{ name: 'tenant', value: Buffer.from('b') }] });
    found = await lookupKey(topic, key(k), { conditions: header('tenant', 'a') });
    assert.equal(found.message, null);
  });

  it('leaves out a newest record past the stable offset, as a read_committed stream does', async () => {
    const topic = itemsTopic();
    const k = keyIn(1, 'txn');
    topic.put(1, k, 'committed');
    const store = topic.store(1);
    store.append([{ offset: 1n, timestamp: 2_000, key: key(k), value: key('pending') }], {
      highWatermark: 2n,
      lastStableOffset: 1n,
    });
    const found = await lookupKey(topic, key(k));
    assert.equal(found.message, null);
    assert.equal(found.progress.get(1), 1n);
  });

  it('tells whether the key changed since a progress, and moves the progress on', async () => {
    const topic = itemsTopic();
    const k = keyIn(0, 'since');
    topic.put(0, k, 'v1');
    const first = await lookupKey(topic, key(k));
    topic.put(1, keyIn(1, 'unrelated'), 'x');
    const unchanged = await lookupKey(topic, key(k), { since: first.progress });
    assert.equal(unchanged.changed, false);
    assert.deepEqual(unchanged.progress, ends(topic));
    topic.put(0, k, 'v2');
    const changed = await lookupKey(topic, key(k), { since: unchanged.progress });
    assert.equal(changed.changed, true);
    assert.equal(valueOf(changed), 'v2');
    // A progress past what the cache holds or heard of is held to that, and a partition the topic
    // does not have is dropped: a position a client made up is never handed back.
    const ahead = new Map([...changed.progress].map(([p, o]) => [p, o + 10n]));
    ahead.set(9, 4n);
    const later = await lookupKey(topic, key(k), { since: ahead });
    assert.equal(later.changed, false);
    assert.deepEqual(later.progress, ends(topic));
  });

  it('holds a made-up progress to the topic: no partition it lacks, no offset past an end', async () => {
    const topic = itemsTopic();
    const k = keyIn(1, 'forged');
    topic.put(1, k, 'one');
    const forged = new Map([
      [1, 2n ** 62n],
      [PARTITIONS + 3, 7n],
    ]);
    const now = await lookupKey(topic, key(k), { since: forged });
    assert.equal(now.changed, false);
    assert.deepEqual(now.progress, ends(topic));
    // Taken as the end rather than as a position no record reaches: a write during the wait is
    // the change it waits for.
    const waiting = lookupKey(topic, key(k), { since: forged, waitMs: 5_000 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    topic.put(1, k, 'two');
    const later = await waiting;
    assert.equal(later.changed, true);
    assert.equal(valueOf(later), 'two');
    assert.deepEqual(later.progress, ends(topic));
  });

  it('does not count a new record that fails the conditions as a change', async () => {
    const topic = itemsTopic();
    const k = keyIn(2, 'cond');
    const conditions = header('tenant', 'a');
    topic.put(2, k, 'v1', { headers: [{ name: 'tenant', value: Buffer.from('a') }] });
    const first = await lookupKey(topic, key(k), { conditions });
    topic.put(2, k, null);
    const next = await lookupKey(topic, key(k), { conditions, since: first.progress });
    assert.equal(next.changed, false);
    assert.equal(next.message, null);
  });

  it('waits for a change of the key, and only of the key', async () => {
    const topic = itemsTopic();
    const k = keyIn(3, 'wait');
    topic.put(3, k, 'v1');
    const first = await lookupKey(topic, key(k));
    const started = Date.now();
    const waiting = lookupKey(topic, key(k), { since: first.progress, waitMs: 5_000 });
    setTimeout(() => topic.put(0, keyIn(0, 'noise'), 'x'), 20);
    setTimeout(() => topic.put(3, k, 'v2'), 80);
    const found = await waiting;
    assert.equal(found.changed, true);
    assert.equal(valueOf(found), 'v2');
    assert.ok(Date.now() - started < 2_000);
    assert.deepEqual(found.progress, ends(topic));
    assert.equal(topic.listeners, 0);
  });

  it('ends a wait without a change at its time or its signal, with the progress then', async () => {
    const topic = itemsTopic();
    const k = keyIn(1, 'idle');
    topic.put(1, k, 'v1');
    const first = await lookupKey(topic, key(k));
    setTimeout(() => topic.put(2, keyIn(2, 'noise'), 'x'), 20);
    let started = Date.now();
    const timedOut = await lookupKey(topic, key(k), { since: first.progress, waitMs: 150 });
    assert.equal(timedOut.changed, false);
    assert.ok(Date.now() - started >= 140);
    assert.deepEqual(timedOut.progress, ends(topic));

    const stop = new AbortController();
    setTimeout(() => stop.abort(), 30);
    started = Date.now();
    const stopped = await lookupKey(topic, key(k), {
      since: timedOut.progress,
      waitMs: 10_000,
      waitSignal: stop.signal,
    });
    assert.equal(stopped.changed, false);
    assert.ok(Date.now() - started < 2_000);

    const gone = new AbortController();
    setTimeout(() => gone.abort(new Error('client left')), 30);
    await assert.rejects(
      lookupKey(topic, key(k), { since: timedOut.progress, waitMs: 10_000, signal: gone.signal }),
      /client left/,
    );
    assert.equal(topic.listeners, 0);
  });

  it('waits for the cache to catch up, and gives up with NotCaughtUpError', async () => {
    const topic = itemsTopic([2]);
    const k = keyIn(2, 'late');
    const waiting = lookupKey(topic, key(k));
    setTimeout(() => {
      topic.put(2, k, 'fetched');
      topic.setReady(2);
    }, 30);
    assert.equal(valueOf(await waiting), 'fetched');

    topic.behind(0, 5n);
    await assert.rejects(lookupKey(topic, key(k), { catchUpMs: 50 }), NotCaughtUpError);
    assert.equal(topic.listeners, 0);
  });

  it('waits for a record produced through the cache_server that the cache has not fetched yet', async () => {
    const topic = itemsTopic();
    const k = keyIn(1, 'written');
    topic.put(1, k, 'old');
    // The broker acknowledged offset 1 before the cache's fetch brought it, or heard of it.
    topic.produced.set(1, 2n);
    let settled = false;
    const waiting = lookupKey(topic, key(k)).finally(() => (settled = true));
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(settled, false, 'answered before the cache held the acknowledged write');
    topic.put(1, k, 'new');
    const found = await waiting;
    assert.equal(valueOf(found), 'new');
    assert.equal(found.progress.get(1), 2n);
  });

  it('answers what a filtered stream read to the head answers, with the same progress', async () => {
    const topic = itemsTopic();
    const keys = ['a', 'b', 'c', 'd', 'e'];
    let seed = 7;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const fill = (count: number): void => {
      for (let i = 0; i < count; i++) {
        const k = keys[random(keys.length)] ?? 'a';
        // Mostly the default partition, sometimes an explicit one elsewhere.
        const p = random(5) === 0 ? random(PARTITIONS) : partitionForKey(k, PARTITIONS);
        topic.put(p, k, random(6) === 0 ? null : `${k}${i}`);
      }
    };
    const readToHead = async (
      k: string,
      since?: ReadonlyMap<number, bigint>,
    ): Promise<{ values: (string | undefined)[]; progress: ReadonlyMap<number, bigint> }> => {
      const options = { filters: [[{ key: key(k) }]], ...(since === undefined ? {} : { partitions: since }) };
      const stream = fakeStream(topic, options);
      const reader = new HeadReader(stream, topic);
      const values: (string | undefined)[] = [];
      for (;;) {
        const step = await reader.step(Date.now() + 2_000, true);
        if (step.type !== 'message') break;
        values.push(step.message.value?.toString());
      }
      assert.equal(await reader.finish(), undefined);
      return { values, progress: reader.progress };
    };
    fill(200);
    let compared = 0;
    const before = new Map<string, ReadonlyMap<number, bigint>>();
    for (const k of [...keys, 'absent']) {
      const read = await readToHead(k);
      const found = await lookupKey(topic, key(k));
      const holders = topic.partitions().filter((p) => topic.store(p).latestOffsetOf(key(k)) !== null);
      // With the key in several partitions the stream's answer depends on its delivery order.
      if (holders.length <= 1) {
        assert.equal(valueOf(found), read.values.at(-1), `key ${k}`);
        compared++;
      }
      assert.deepEqual(found.progress, read.progress, `progress for key ${k}`);
      before.set(k, found.progress);
    }
    assert.ok(compared >= 3, `only ${compared} keys held in one partition`);
    fill(8);
    let changes = 0;
    for (const k of [...keys, 'absent']) {
      const since = before.get(k);
      const read = await readToHead(k, since);
      const found = await lookupKey(topic, key(k), { ...(since === undefined ? {} : { since }) });
      assert.equal(found.changed, read.values.length > 0, `change of key ${k}`);
      assert.deepEqual(found.progress, read.progress, `progress since for key ${k}`);
      if (found.changed) changes++;
    }
    assert.ok(changes >= 1 && changes < keys.length + 1, `${changes} keys changed`);
  });
});
