import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { KafkaRecord, RecordBatch } from '../../src/bindings/kafka/client/index.ts';
import { murmur2, parseTopicConfig, partitionForKey } from '../../src/bindings/kafka/cache_server/index.ts';
import { TransactionHold } from '../../src/bindings/kafka/cache_server/transactions.ts';

// Computed with org.apache.kafka.common.utils.Utils from kafka-clients 4.4.0:
// murmur2(bytes) and toPositive(murmur2(bytes)) % 7.
const JAVA_VECTORS: ReadonlyArray<readonly [string, number, number]> = [
  ['', 275646681, 2],
  ['a', -1563381124, 5],
  ['ab', 316155434, 0],
  ['abc', 479470107, 4],
  ['hello', 2132663229, 4],
  ['21', -973932308, 3],
  ['foobar', -790332482, 0],
  ['key-1', 193331640, 5],
  ['user-42', 1459644460, 1],
  ['a-little-bit-long-string', -985981536, 1],
  ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971, 3],
  ['été ☃', 265277273, 2],
];

describe('murmur2 partitioner', () => {
  for (const [key, hash, partition] of JAVA_VECTORS) {
    it(`matches Java for ${JSON.stringify(key)}`, () => {
      assert.equal(murmur2(Buffer.from(key, 'utf8')), hash);
      assert.equal(partitionForKey(key, 7), partition);
      assert.equal(partitionForKey(Buffer.from(key, 'utf8'), 7), partition);
    });
  }
});

describe('topic config', () => {
  it('reads cleanup.policy lists and falls back to broker defaults', () => {
    const c = parseTopicConfig({
      'cleanup.policy': 'compact,delete',
      'retention.ms': '-1',
      'min.compaction.lag.ms': '5',
    });
    assert.deepEqual(c.cleanupPolicy, ['compact', 'delete']);
    assert.equal(c.retentionMs, -1);
    assert.equal(c.minCompactionLagMs, 5);
    assert.equal(c.retentionBytes, -1);
    assert.equal(c.segmentBytes, 1024 * 1024 * 1024);
    assert.deepEqual(parseTopicConfig({}).cleanupPolicy, ['delete']);
  });
});

function record(offset: number, value: string): KafkaRecord {
  return {
    offset: BigInt(offset),
    timestamp: 1000 + offset,
    key: null,
    value: Buffer.from(value),
    headers: [],
  };
}

function batch(
  offsets: number[],
  options: { producerId?: number; transactional?: boolean; control?: 'commit' | 'abort' } = {},
): RecordBatch {
  const records = offsets.map((o) => record(o, `v${o}`));
  return {
    baseOffset: BigInt(offsets[0] ?? 0),
    lastOffset: BigInt(offsets[offsets.length - 1] ?? 0),
    partitionLeaderEpoch: 0,
    producerId: BigInt(options.producerId ?? -1),
    producerEpoch: 0,
    baseSequence: 0,
    transactional: options.transactional === true || options.control !== undefined,
    control: options.control !== undefined,
    controlType: options.control ?? null,
    compression: 'none',
    logAppendTime: false,
    maxTimestamp: 0,
    records,
  };
}

describe('transaction hold', () => {
  it('passes non-transactional records straight through', () => {
    const hold = new TransactionHold();
    hold.add(batch([0, 1]));
    assert.deepEqual(
      hold.release().map((r) => r.offset),
      [0n, 1n],
    );
    assert.ok(hold.empty);
  });

  it('holds an open transaction and everything after it until its marker', () => {
    const hold = new TransactionHold();
    hold.add(batch([0]));
    hold.add(batch([1, 2], { producerId: 7, transactional: true }));
    hold.add(batch([3]));
    hold.add(batch([4], { producerId: 8, transactional: true }));
    assert.deepEqual(
      hold.release().map((r) => r.offset),
      [0n],
    );
    assert.equal(hold.firstHeldOffset, 1n);
    hold.add(batch([5], { producerId: 7, control: 'abort' }));
    const released = hold.release();
    assert.deepEqual(
      released.map((r) => [r.offset, r.aborted === true, r.control === true]),
      [
        [1n, true, false],
        [2n, true, false],
        [3n, false, false],
      ],
    );
    hold.add(batch([6], { producerId: 8, control: 'commit' }));
    assert.deepEqual(
      hold.release().map((r) => [r.offset, r.aborted === true, r.control === true, r.transactional === true]),
      [
        [4n, false, false, true],
        [5n, false, true, true],
        [6n, false, true, true],
      ],
    );
    assert.ok(hold.empty);
    assert.equal(hold.bytes, 0);
  });
});
