import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { errorCodeOf, httpStatusOf } from '../../src/engine/errors.ts';
import {
  ConnectionError,
  ProduceOutcomeUnknownError,
  TopicGoneError,
} from '../../src/bindings/kafka/client/errors.ts';
import { createClientMetrics } from '../../src/bindings/kafka/client/metrics.ts';
import type { KafkaClientOptions } from '../../src/bindings/kafka/client/options.ts';
import { PartitionQueue } from '../../src/bindings/kafka/client/partition-queue.ts';
import type { ProduceResult } from '../../src/bindings/kafka/client/produce-batch.ts';
import { ProduceRouter } from '../../src/bindings/kafka/client/produce-router.ts';
import { FakeIdempotentBroker } from '../support/fake-idempotent-broker.ts';
import { until } from '../support/until.ts';

const TOPIC = 'queue-topic';

function router(broker: FakeIdempotentBroker, options: Partial<KafkaClientOptions> = {}): ProduceRouter {
  return new ProduceRouter({
    options: {
      servers: ['fake:9092'],
      retryInitialMs: 5,
      retryMaxMs: 20,
      deliveryTimeoutMs: 10_000,
      produceRequestsInFlight: 5,
      ...options,
    },
    connect: () => broker.connect(),
    leader: () => Promise.resolve(1),
    refresh: () => Promise.resolve(),
    initProducerId: () => Promise.resolve({ producerId: broker.nextProducerId++, epoch: 0 }),
    metrics: createClientMetrics(undefined, 'test').produce,
    log: undefined,
    closing: new AbortController().signal,
  });
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Outcome {
  readonly value: string;
  readonly result?: ProduceResult;
  readonly error?: Error;
}

/** Makes `count` one-record calls to `partition`, a few per event-loop turn so that they form several batches. */
async function produceMany(
  r: ProduceRouter,
  count: number,
  partition = 0,
  prefix = 'v',
  perTurn = 3,
): Promise<Outcome[]> {
  const calls: Promise<Outcome>[] = [];
  for (let i = 0; i < count; i++) {
    const value = `${prefix}${i}`;
    calls.push(
      r.produce(TOPIC, partition, [{ value }]).then(
        (result) => ({ value, result }),
        (error: unknown) => ({ value, error: error as Error }),
      ),
    );
    if (i % perTurn === perTurn - 1) await tick();
  }
  return Promise.all(calls);
}

/** Every call written, each exactly once, in the order made, at the offset it was told. */
function assertWrittenInOrder(
  broker: FakeIdempotentBroker,
  outcomes: readonly Outcome[],
  partition = 0,
): void {
  for (const o of outcomes) assert.equal(o.error, undefined, `${o.value}: ${o.error?.message ?? ''}`);
  const log = broker.log(partition);
  const ours = log.filter((v) => outcomes.some((o) => o.value === v));
  assert.deepEqual(
    ours,
    outcomes.map((o) => o.value),
  );
  for (const o of outcomes) assert.equal(log[Number(o.result?.baseOffset)], o.value, `offset of ${o.value}`);
}

describe('produce: one ordered queue per partition', { timeout: 30_000 }, () => {
  it('sends again, in order, the batches a dropped connection carried, written or not', async () => {
    const broker = new FakeIdempotentBroker();
    broker.latencyMs = 3;
    // The second request is written to the log but its answer is lost; the ones behind it on the
    // same connection fail with it, unread.
    broker.faults.push(undefined, { kind: 'drop-after-append' });
    const outcomes = await produceMany(router(broker), 60);
    assertWrittenInOrder(broker, outcomes);
    // The batch written before the drop came again and was recognised, not written twice.
    assert.ok(
      broker.received.some(
        (b) => b.code === 0 && broker.received.filter((c) => c.baseSequence === b.baseSequence).length > 1,
      ),
    );
    assert.ok(
      broker.received.every((b) => b.epoch === 0),
      'no epoch bump for a lost connection',
    );
  });

  it('retries a refused batch ahead of the later ones, which the broker refuses as out of order meanwhile', async () => {
    const broker = new FakeIdempotentBroker();
    broker.latencyMs = 3;
    broker.faults.push(undefined, { kind: 'refuse', code: 6 });
    const outcomes = await produceMany(router(broker), 60);
    assertWrittenInOrder(broker, outcomes);
    assert.ok(
      broker.received.some((b) => b.code === 45),
      'batches behind the refused one came before it was sent again',
    );
    assert.ok(
      broker.received.every((b) => b.epoch === 0),
      'out-of-order answers behind a retry bump nothing',
    );
  });

  it('costs no call for an outage shorter than the deadline', async () => {
    const broker = new FakeIdempotentBroker();
    broker.latencyMs = 2;
    const r = router(broker);
    const first = produceMany(r, 30, 0, 'a');
    const second = produceMany(r, 30, 1, 'b');
    await sleep(5);
    broker.down = true;
    broker.dropConnection();
    await sleep(300);
    broker.down = false;
    const outcomes = [await first, await second];
    assertWrittenInOrder(broker, outcomes[0] ?? [], 0);
    assertWrittenInOrder(broker, outcomes[1] ?? [], 1);
  });

  it('keeps at most five batches of a partition in flight', async () => {
    const broker = new FakeIdempotentBroker();
    broker.latencyMs = 10;
    const outcomes = await produceMany(router(broker), 200, 0, 'v', 1);
    assertWrittenInOrder(broker, outcomes);
    const most = broker.maxInFlight.get(0) ?? 0;
    assert.ok(most <= 5, `${most} batches in flight`);
    assert.ok(most > 1, 'requests are pipelined');
  });

  it('bumps the epoch when the broker lost the sequence after the last acknowledged batch', async () => {
    const broker = new FakeIdempotentBroker();
    const r = router(broker);
    for (const value of ['a', 'b', 'c']) await r.produce(TOPIC, 0, [{ value }]);
    broker.truncateLastBatch(0);
    const result = await r.produce(TOPIC, 0, [{ value: 'd' }]);
    assert.deepEqual(broker.log(0), ['a', 'b', 'd']);
    assert.equal(result.baseOffset, 2n);
    const last = broker.received.at(-1);
    assert.equal(last?.epoch, 1);
    assert.equal(last?.baseSequence, 0);
    assert.ok(broker.received.some((b) => b.code === 45));
  });

  it('bumps the epoch on UNKNOWN_PRODUCER_ID and sends the batch again from sequence 0', async () => {
    const broker = new FakeIdempotentBroker();
    const r = router(broker);
    await r.produce(TOPIC, 0, [{ value: 'a' }]);
    broker.faults.push({ kind: 'refuse', code: 59 });
    await r.produce(TOPIC, 0, [{ value: 'b' }]);
    assert.deepEqual(broker.log(0), ['a', 'b']);
    assert.deepEqual(
      broker.received.map((b) => [b.epoch, b.baseSequence, b.code]),
      [
        [0, 0, 0],
        [0, 1, 59],
        [1, 0, 0],
      ],
    );
  });

  it('takes a new producer id when the broker refuses the epoch', async () => {
    const broker = new FakeIdempotentBroker();
    const r = router(broker);
    await r.produce(TOPIC, 0, [{ value: 'a' }]);
    broker.faults.push({ kind: 'refuse', code: 47 });
    await r.produce(TOPIC, 0, [{ value: 'b' }]);
    assert.deepEqual(broker.log(0), ['a', 'b']);
    const ids = new Set(broker.received.map((b) => b.producerId));
    assert.equal(ids.size, 2);
    assert.equal(broker.received.at(-1)?.baseSequence, 0);
  });

  it('fails a batch the broker refuses for good, and keeps the partition going with a new epoch', async () => {
    const broker = new FakeIdempotentBroker();
    broker.latencyMs = 3;
    const r = router(broker);
    await r.produce(TOPIC, 0, [{ value: 'a' }]);
    broker.faults.push({ kind: 'refuse', code: 10 });
    const refused = r.produce(TOPIC, 0, [{ value: 'too-large' }]);
    await assert.rejects(refused, (error: unknown) => errorCodeOf(error) === 'KGATE_MESSAGE_TOO_LARGE');
    const outcomes = await produceMany(r, 10);
    assertWrittenInOrder(broker, outcomes);
    assert.deepEqual(broker.log(0)[0], 'a');
  });
});

describe('produce: calls given up', { timeout: 30_000 }, () => {
  it('drops a call given up before it is sent, and a sent batch to retry once its partition is gone', async () => {
    const broker = new FakeIdempotentBroker();
    const r = router(broker, { retryInitialMs: 300, retryMaxMs: 300 });
    await r.produce(TOPIC, 0, [{ value: 'a' }]);
    // Refused once with a retriable error: the batch waits for its retry, already sent.
    broker.faults.push({ kind: 'refuse', code: 6 });
    const gone = new AbortController();
    const sent = r.produce(TOPIC, 0, [{ value: 'b' }], { signal: gone.signal });
    await until('the refusal', () => broker.received.some((b) => b.code === 6));
    const reason = new TopicGoneError(TOPIC, 0, 'the topic was deleted');
    gone.abort(reason);
    await assert.rejects(sent, (error: unknown) => error === reason);
    // Never sent: it leaves its batch at once, with its caller's reason.
    const left = new AbortController();
    const never = r.produce(TOPIC, 0, [{ value: 'c' }], { signal: left.signal });
    left.abort(new Error('the client closed the connection'));
    await assert.rejects(never, /the client closed the connection/);
    // The partition goes on, under a new epoch since a sent batch was dropped.
    await r.produce(TOPIC, 0, [{ value: 'd' }]);
    assert.deepEqual(broker.log(0), ['a', 'd']);
    assert.equal(broker.received.at(-1)?.epoch, 1);
  });
});

describe('produce: answers at the deadline', { timeout: 30_000 }, () => {
  it('answers unknown outcome for a batch sent and never answered, with where to look', async () => {
    const broker = new FakeIdempotentBroker();
    const r = router(broker, { deliveryTimeoutMs: 300 });
    await r.produce(TOPIC, 0, [{ value: 'a' }]);
    broker.faults.push({ kind: 'hang' });
    const started = Date.now();
    const error = await r.produce(TOPIC, 0, [{ value: 'b' }]).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(error instanceof ProduceOutcomeUnknownError, String(error));
    assert.equal(errorCodeOf(error), 'KGATE_PRODUCE_OUTCOME_UNKNOWN');
    assert.equal(httpStatusOf(error), 504);
    assert.equal(error.partition, 0);
    assert.equal(error.fromOffset, 1n);
    assert.ok(Date.now() - started < 2_000, 'answered at the deadline, not when the request times out');
    // The partition goes on once the hung connection is gone: its sequence gap means a new epoch.
    broker.dropConnection();
    const next = await r.produce(TOPIC, 0, [{ value: 'c' }]);
    assert.deepEqual(broker.log(0), ['a', 'c']);
    assert.equal(next.baseOffset, 1n);
    assert.equal(broker.received.at(-1)?.epoch, 1);
  });

  it('answers not written, never unknown, when nothing reached the broker', async () => {
    const broker = new FakeIdempotentBroker();
    broker.down = true;
    const r = router(broker, { deliveryTimeoutMs: 200 });
    const error = await r.produce(TOPIC, 0, [{ value: 'a' }]).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(error instanceof Error);
    assert.ok(!(error instanceof ProduceOutcomeUnknownError));
    assert.equal(errorCodeOf(error), 'KGATE_KAFKA_UNAVAILABLE');
    assert.match(error.message, /not written/);
    assert.deepEqual(broker.received, []);
  });

  it('answers unknown outcome for a batch written before its connection dropped, and does not write it twice', async () => {
    const broker = new FakeIdempotentBroker();
    const r = router(broker, { deliveryTimeoutMs: 300 });
    broker.faults.push({ kind: 'drop-after-append' });
    broker.down = false;
    const pending = r.produce(TOPIC, 0, [{ value: 'a' }]);
    // The broker goes away right after it appended: no retry can settle it within the deadline.
    await sleep(1);
    broker.down = true;
    const error = await pending.then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(error instanceof ProduceOutcomeUnknownError, String(error));
    broker.down = false;
    await r.produce(TOPIC, 0, [{ value: 'b' }]);
    assert.deepEqual(broker.log(0), ['a', 'b']);
  });

  it('settles a batch by resending it within the deadline when the broker comes back', async () => {
    const broker = new FakeIdempotentBroker();
    const r = router(broker, { deliveryTimeoutMs: 5_000 });
    broker.faults.push({ kind: 'drop-after-append' });
    const pending = r.produce(TOPIC, 0, [{ value: 'a' }]);
    await sleep(1);
    broker.down = true;
    await sleep(200);
    broker.down = false;
    const result = await pending;
    assert.equal(result.baseOffset, 0n);
    assert.deepEqual(broker.log(0), ['a']);
  });
});

describe('PartitionQueue', () => {
  const channel = {};
  const lost = new ConnectionError('connection to fake:9092 closed');
  const identity = { producerId: 7n, epoch: 0 };
  const call = (value: string): Parameters<PartitionQueue['add']>[0] => ({
    records: [{ value }],
    acks: -1,
    compression: 'none',
    resolve: () => undefined,
    reject: () => undefined,
  });

  it('gives each batch its sequences once and keeps them through a retry', () => {
    const q = new PartitionQueue(TOPIC, 0, () => 0);
    q.add(call('a'), Infinity);
    const a = q.take(channel, identity, 0, -1);
    q.add(call('b'), Infinity);
    q.add(call('c'), Infinity);
    const b = q.take(channel, identity, 0, -1);
    assert.deepEqual([a?.sequence?.base, b?.sequence?.base, b?.recordCount], [0, 1, 2]);
    assert.ok(a !== undefined && b !== undefined);
    q.ended(a, { kind: 'lost', error: lost, written: true }, 0);
    // The retry of a goes first, over a new connection, while b is still out on the old one...
    const next = {};
    const again = q.take(next, identity, 1, -1);
    assert.equal(again, a);
    assert.equal(again?.sequence?.base, 0);
    // ...but nothing after it may pass b there.
    assert.equal(q.peek(next, identity, 1), undefined);
    q.ended(b, { kind: 'lost', error: lost, written: true }, 1);
    const resent = q.take(next, identity, 1, -1);
    assert.equal(resent, b);
    assert.equal(resent?.sequence?.base, 1);
  });

  it('sends nothing new while a retry is pending ahead of it', () => {
    const q = new PartitionQueue(TOPIC, 0, () => 100);
    q.add(call('a'), Infinity);
    const a = q.take(channel, identity, 0, -1);
    assert.ok(a !== undefined);
    q.add(call('b'), Infinity);
    q.ended(a, { kind: 'lost', error: lost, written: false }, 0);
    assert.equal(q.peek(channel, identity, 50), undefined, 'backing off');
    assert.equal(q.peek(channel, identity, 100), a, 'the retry first');
  });

  it('lets a new epoch start only once the batches of the old one are answered', () => {
    const q = new PartitionQueue(TOPIC, 0, () => 0);
    q.add(call('a'), Infinity);
    const a = q.take(channel, identity, 0, -1);
    q.add(call('b'), Infinity);
    const bumped = { producerId: 7n, epoch: 1 };
    assert.equal(q.peek(channel, bumped, 0), undefined);
    assert.ok(a !== undefined);
    q.ended(a, { kind: 'acked', baseOffset: 0n, logAppendTimeMs: -1n }, 0);
    const b = q.take(channel, bumped, 0, -1);
    assert.deepEqual(b?.sequence, { producerId: 7n, epoch: 1, base: 0 });
  });
});
