import { strict as assert } from 'node:assert';
import { after, describe, it } from 'node:test';
import type { RecordInput } from '../../src/bindings/kafka/cache/index.ts';
import { HeadReader, type HeadStep, type OpenOptions } from '../../src/bindings/kafka/cache_client/index.ts';
import { closeFakeTopics, FakeTopic, fakeStream } from '../support/fake-cache.ts';

after(closeFakeTopics);

/** A compacted topic over real partition stores, fed by the test. */
function compactedTopic(partitions: number, notReady: number[] = []): FakeTopic {
  return new FakeTopic('t', { partitions, compacted: true, notReady });
}

function rec(offset: number, key: string, value: string | null): RecordInput {
  return {
    offset: BigInt(offset),
    timestamp: 1_000 + offset,
    key: Buffer.from(key),
    value: value === null ? null : Buffer.from(value),
  };
}

function reader(topic: FakeTopic, options: OpenOptions = {}): HeadReader {
  return new HeadReader(fakeStream(topic, options), topic);
}

async function readAll(r: HeadReader, ms = 1_000, each?: (step: HeadStep) => void): Promise<string[]> {
  const out: string[] = [];
  const until = Date.now() + ms;
  for (;;) {
    const step = await r.step(until, true);
    each?.(step);
    if (step.type !== 'message') {
      const late = await r.finish();
      if (late !== undefined) out.push(`${late.key?.toString()}=${late.value?.toString()}`);
      out.push(step.type);
      return out;
    }
    out.push(`${step.message.key?.toString()}=${step.message.value?.toString()}`);
  }
}

describe('cache_client head reader', () => {
  it('stops at the head even when the last records are filtered out', async () => {
    const topic = compactedTopic(2);
    topic.append(0, [rec(0, 'a', '1'), rec(1, 'b', '2'), rec(2, 'c', '3')]);
    const r = reader(topic, { filters: [[{ key: Buffer.from('a') }]] });
    assert.deepEqual(await readAll(r), ['a=1', 'head']);
    assert.deepEqual(
      r.progress,
      new Map([
        [0, 3n],
        [1, 0n],
      ]),
    );
  });

  it('fails the read when the topic is deleted under it, rather than answering part of it', async () => {
    const t = compactedTopic(2);
    t.append(0, [rec(0, 'a', 'A')]);
    t.append(1, [rec(0, 'b', 'B')]);
    const r = reader(t);
    const first = await r.step(Date.now() + 1_000, true);
    assert.equal(first.type, 'message');
    // What the cache_server does: every partition goes, and the attachment ends with the error.
    t.shrink(0);
    t.emit({ type: 'error', error: new Error('topic "t" was deleted') });
    await assert.rejects(r.step(Date.now() + 1_000, true), /was deleted/);
    await r.finish();
  });

  it('waits for a partition the cache has not fetched yet, then gives up', async () => {
    const topic = compactedTopic(2, [1]);
    topic.append(0, [rec(0, 'a', '1')]);
    assert.deepEqual(await readAll(reader(topic), 100), ['a=1', 'timeout']);
  });

  it('waits for the cache to reach the broker end it knew of', async () => {
    const topic = compactedTopic(1);
    // The broker has 3 records; the cache holds the first only so far.
    topic.append(0, [rec(0, 'a', '1')], { highWatermark: 3n });
    const r = reader(topic);
    const pending = readAll(r, 2_000);
    setTimeout(() => topic.append(0, [rec(1, 'b', '2'), rec(2, 'c', '3')]), 50);
    assert.deepEqual(await pending, ['a=1', 'b=2', 'c=3', 'head']);
  });

  it('never loses a key whose value is replaced while the snapshot is read', async () => {
    const topic = compactedTopic(1);
    topic.append(0, [rec(0, 'a', 'a1'), rec(1, 'b', 'b1'), rec(2, 'c', 'c1')]);
    const r = reader(topic);
    let replaced = false;
    const got = await readAll(r, 1_000, () => {
      // b1 is not read yet; once b2 exists, conflation skips b1, so b2 must be read.
      if (!replaced) topic.append(0, [rec(3, 'b', 'b2')]);
      replaced = true;
    });
    assert.deepEqual(got, ['a=a1', 'c=c1', 'b=b2', 'head']);
  });
});
