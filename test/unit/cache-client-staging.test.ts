import { strict as assert } from 'node:assert';
import { tmpdir } from 'node:os';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import {
  CacheClientBinding,
  MessageTooLargeError,
  StagingBudget,
  type CacheStream,
  type ProduceAck,
} from '../../src/bindings/kafka/cache_client/index.ts';
import { CacheStream as StreamClass } from '../../src/bindings/kafka/cache_client/stream.ts';
import type {
  CacheServerApi,
  CachedTopic,
  CachedTopicConfig,
} from '../../src/bindings/kafka/cache_server/api.ts';
import type { ProduceRecord } from '../../src/bindings/kafka/client/index.ts';
import type { Binding, BindingContext } from '../../src/engine/binding.ts';
import { topicConfig } from '../support/topic-config.ts';

const MAX_MESSAGE_BYTES = 10_000;

const CONFIG: CachedTopicConfig = topicConfig({ maxMessageBytes: MAX_MESSAGE_BYTES });

/** A produce-only topic: staging never reads partitions. */
function topic(name: string): CachedTopic & { released: number } {
  return {
    topic: name,
    config: CONFIG,
    compacted: false,
    defaultOffset: 'historical',
    released: 0,
    partitions: () => [],
    isReady: () => false,
    producedEnd: () => -1n,
    store: () => {
      throw new Error('no partitions');
    },
    onChange: () => () => undefined,
    release() {
      this.released++;
    },
  };
}

interface Pending {
  readonly value: Buffer;
  ack(): void;
  fail(error: Error): void;
}

/** An exit whose produce calls are answered when the test says so. */
class SlowExit implements CacheServerApi {
  readonly pending: Pending[] = [];
  produced = 0;

  attach(name: string): Promise<CachedTopic> {
    return Promise.resolve(topic(name));
  }

  produce(
    name: string,
    partition: number | undefined,
    records: readonly ProduceRecord[],
  ): Promise<ProduceAck> {
    const value = records[0]?.value;
    assert.ok(Buffer.isBuffer(value));
    return new Promise((resolve, reject) => {
      this.pending.push({
        value,
        ack: () => {
          this.produced++;
          resolve({
            topic: name,
            partition: partition ?? 0,
            baseOffset: BigInt(this.produced),
            offsets: [BigInt(this.produced)],
            logAppendTime: null,
          });
        },
        fail: reject,
      });
    });
  }

  /** Answers the oldest outstanding produce. */
  ackOne(): void {
    const next = this.pending.shift();
    assert.ok(next, 'a produce is outstanding');
    next.ack();
  }
}

function open(exit: CacheServerApi, budget: StagingBudget): CacheStream {
  return new StreamClass({
    topic: topic('staging'),
    exit,
    options: { capabilities: 'produce' },
    defaultOffset: 'historical',
    staging: budget,
    stagingName: 'staging.maxBytes of binding test',
  });
}

/** Whether a promise settles within a few event-loop turns. */
async function settles(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  return done;
}

describe('staging budget', () => {
  it('grants within the budget, queues past it, and serves waiters oldest first', async () => {
    const budget = new StagingBudget(1000);
    const a = budget.open(600);
    const b = budget.open(600);
    const c = budget.open(600);
    assert.equal(budget.take(a, 600), true);
    assert.equal(budget.take(b, 300), true, 'room left beside the largest claim');
    assert.equal(budget.take(b, 200), false, 'past the budget');
    assert.equal(budget.take(c, 100), false, 'c queues behind b');
    assert.equal(budget.usedBytes, 900);
    assert.equal(budget.waits, 2);
    const order: string[] = [];
    const bReady = budget.ready(b).then(() => order.push('b'));
    const cReady = budget.ready(c).then(() => order.push('c'));
    budget.seal(a);
    assert.equal(await settles(bReady), false, 'a sealed still holds its bytes until released');
    budget.release(a);
    await Promise.all([bReady, cReady]);
    assert.deepEqual(order, ['b', 'c']);
    assert.equal(budget.usedBytes, 600);
    budget.release(b);
    budget.release(c);
    assert.equal(budget.usedBytes, 0);
    assert.equal(budget.accounts, 0);
  });

  it('rejects a waiting ready() when its account is released', async () => {
    const budget = new StagingBudget(100);
    const a = budget.open(100);
    const b = budget.open(100);
    assert.equal(budget.take(a, 100), true);
    assert.equal(budget.take(b, 50), false);
    const waiting = budget.ready(b);
    budget.release(b, new Error('client left'));
    await assert.rejects(waiting, /client left/);
    budget.release(a);
    assert.equal(budget.usedBytes, 0);
  });

  it('lets interleaved writers of unknown sizes all finish, never above the budget', async () => {
    // Claims of 60% of the budget: without room kept for the oldest, half-written messages
    // would fill it and all wait on each other.
    const budget = new StagingBudget(10_000);
    let peak = 0;
    let finished = 0;
    const random = seeded(7);
    const writer = async (): Promise<void> => {
      for (let round = 0; round < 20; round++) {
        const account = budget.open(6_000);
        const size = 1 + Math.floor(random() * 6_000);
        for (let at = 0; at < size; at += 700) {
          if (!budget.take(account, Math.min(700, size - at))) await budget.ready(account);
          peak = Math.max(peak, budget.usedBytes);
          if (random() < 0.5) await new Promise((resolve) => setImmediate(resolve));
        }
        budget.finish(account);
        await budget.ready(account);
        budget.seal(account);
        // The acknowledgement comes later, as a broker's would.
        setTimeout(() => budget.release(account), random() * 3);
      }
      finished++;
    };
    await withTimeout(Promise.all(Array.from({ length: 12 }, () => writer())), 10_000);
    assert.equal(finished, 12);
    assert.ok(peak <= budget.maxBytes, `peak ${peak}`);
    assert.ok(budget.waits > 0, 'the load was enough to make writers wait');
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(budget.usedBytes, 0);
  });
});

describe("staging budget: each owner's share", () => {
  it("holds an owner's later messages to its share without holding up other owners", async () => {
    const budget = new StagingBudget(10_000, 3_000);
    const connection = {};
    const other = {};
    const first = budget.open(2_000, connection);
    const second = budget.open(2_000, connection);
    const third = budget.open(2_000, connection);
    assert.equal(budget.take(first, 2_000), true, "the owner's oldest grows to its claim");
    assert.equal(budget.take(second, 1_000), true, 'within the share beside the largest claim');
    assert.equal(budget.take(second, 1), false, 'past the share');
    assert.equal(budget.take(third, 500), false, 'past the share');
    assert.equal(budget.heldBy(connection), 3_000);
    assert.equal(budget.ownerWaits, 2);
    // Another owner opened later is served at once, past the waiting older ones.
    const elsewhere = budget.open(2_000, other);
    assert.equal(budget.take(elsewhere, 2_000), true);
    const unowned = budget.open(2_000);
    assert.equal(budget.take(unowned, 2_000), true);
    assert.equal(budget.usedBytes, 7_000);
    // The owner's oldest is done: its others take their turn, oldest first.
    const secondReady = budget.ready(second);
    const thirdReady = budget.ready(third);
    assert.equal(await settles(secondReady), false);
    budget.finish(first);
    budget.seal(first);
    await secondReady;
    assert.equal(await settles(thirdReady), true, 'the share beside the claims has room again');
    assert.equal(budget.heldBy(connection), 1_001 + 500);
    for (const account of [first, second, third, elsewhere, unowned]) budget.release(account);
    assert.equal(budget.usedBytes, 0);
    assert.equal(budget.heldBy(connection), 0);
  });

  it("is under pressure while a write waits for the budget itself, not for its owner's share", () => {
    const budget = new StagingBudget(10_000, 3_000, 250);
    const pressure = budget.pressure;
    assert.equal(pressure.idleMs, 250);
    let told = 0;
    const stop = pressure.subscribe(() => told++);
    const connection = {};
    const first = budget.open(2_000, connection);
    const second = budget.open(2_000, connection);
    assert.equal(budget.take(first, 2_000), true);
    assert.equal(budget.take(second, 1_500), false, "held back by the connection's share");
    assert.equal(pressure.active(), false);
    assert.equal(told, 0);
    const big = budget.open(9_000);
    assert.equal(budget.take(big, 8_000), false, 'held back by the budget');
    assert.equal(pressure.active(), true);
    assert.equal(told, 1);
    stop();
    budget.release(big);
    assert.equal(pressure.active(), false);
    budget.take(budget.open(9_000), 9_000);
    assert.equal(told, 1, 'no longer listening');
  });

  it('lets the interleaved writers of a few owners all finish, each within its share', async () => {
    const budget = new StagingBudget(20_000, 7_000);
    const owners = [{}, {}, {}];
    const peakOf = new Map<object, number>();
    let finished = 0;
    const random = seeded(11);
    const writer = async (owner: object): Promise<void> => {
      for (let round = 0; round < 15; round++) {
        const account = budget.open(6_000, owner);
        const size = 1 + Math.floor(random() * 6_000);
        for (let at = 0; at < size; at += 700) {
          if (!budget.take(account, Math.min(700, size - at))) await budget.ready(account);
          peakOf.set(owner, Math.max(peakOf.get(owner) ?? 0, budget.heldBy(owner)));
          if (random() < 0.5) await new Promise((resolve) => setImmediate(resolve));
        }
        budget.finish(account);
        await budget.ready(account);
        budget.seal(account);
        setTimeout(() => budget.release(account), random() * 3);
      }
      finished++;
    };
    // Four writers per owner, as an HTTP/2 connection carries several bodies at once.
    await withTimeout(
      Promise.all(owners.flatMap((owner) => Array.from({ length: 4 }, () => writer(owner)))),
      10_000,
    );
    assert.equal(finished, 12);
    for (const owner of owners) assert.ok((peakOf.get(owner) ?? 0) <= 7_000, `peak ${peakOf.get(owner)}`);
    assert.ok(budget.ownerWaits > 0, 'the shares made writers wait');
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(budget.usedBytes, 0);
  });
});

describe('cache_client staged produce under a staging budget', () => {
  it('makes the next producer wait while acknowledgements are slow, then lets it proceed', async () => {
    const exit = new SlowExit();
    const budget = new StagingBudget(16_000);
    const stream = open(exit, budget);
    const first = stream.produceStream({ key: 'a' });
    assert.equal(first.write(Buffer.alloc(5_000, 1)), true);
    const firstAck = first.end();
    const second = stream.produceStream({ key: 'b' });
    assert.equal(second.write(Buffer.alloc(5_000, 2)), true);
    const secondAck = second.end();
    await settles(secondAck);
    assert.equal(exit.pending.length, 2);
    assert.equal(budget.usedBytes, 10_000);

    const third = stream.produceStream({ key: 'c' });
    assert.equal(third.write(Buffer.alloc(4_000, 3)), true);
    assert.equal(third.write(Buffer.alloc(3_000, 3)), false, 'past the budget: wait');
    assert.equal(third.admitted, false);
    const ready = third.ready();
    assert.equal(await settles(ready), false, 'no acknowledgement, no room');
    assert.equal(budget.usedBytes, 14_000, 'the waiting chunk is not counted');

    exit.ackOne();
    await ready;
    assert.equal(third.admitted, true);
    assert.equal(budget.usedBytes, 12_000);
    const thirdAck = third.end(Buffer.alloc(1_000, 3));
    assert.equal(await settles(thirdAck), false);
    exit.ackOne();
    exit.ackOne();
    assert.deepEqual(
      (await Promise.all([firstAck, secondAck, thirdAck])).map((a) => a.baseOffset),
      [1n, 2n, 3n],
    );
    assert.equal(budget.usedBytes, 0);
    assert.equal(budget.waits, 1);
    stream.close();
  });

  it('waits in end() when the last chunk does not fit yet', async () => {
    const exit = new SlowExit();
    const budget = new StagingBudget(8_000);
    const stream = open(exit, budget);
    const first = stream.produceStream();
    first.write(Buffer.alloc(6_000));
    const firstAck = first.end();
    await settles(firstAck);
    const second = stream.produceStream();
    const secondAck = second.end(Buffer.alloc(3_000));
    assert.equal(await settles(secondAck), false);
    assert.equal(exit.pending.length, 1, 'the second is not sent before it fits');
    exit.ackOne();
    await settles(secondAck);
    assert.equal(exit.pending.length, 1);
    assert.equal(exit.pending[0]?.value.length, 3_000);
    exit.ackOne();
    await Promise.all([firstAck, secondAck]);
    assert.equal(budget.usedBytes, 0);
    stream.close();
  });

  it('returns the budget after broker errors, aborts and a closed stream', async () => {
    const exit = new SlowExit();
    const budget = new StagingBudget(16_000);
    const stream = open(exit, budget);

    const failed = stream.produceStream();
    failed.write(Buffer.alloc(3_000));
    const failedAck = failed.end();
    await settles(failedAck);
    exit.pending.shift()?.fail(new Error('NOT_ENOUGH_REPLICAS'));
    await assert.rejects(failedAck, /NOT_ENOUGH_REPLICAS/);
    assert.equal(budget.usedBytes, 0, 'after a broker error');

    const aborted = stream.produceStream();
    aborted.write(Buffer.alloc(3_000));
    aborted.abort();
    assert.equal(budget.usedBytes, 0, 'after abort');
    assert.throws(() => aborted.write('x'), /is failed/);

    const tooLarge = stream.produceStream();
    tooLarge.write(Buffer.alloc(6_000));
    assert.throws(() => tooLarge.write(Buffer.alloc(6_000)), MessageTooLargeError);
    assert.equal(budget.usedBytes, 0, 'after a write past max.message.bytes');

    // Left open, waiting for room, and sent but unanswered when the stream closes.
    const sent = stream.produceStream();
    const sentAck = sent.end(Buffer.alloc(9_000));
    await settles(sentAck);
    const open1 = stream.produceStream();
    open1.write(Buffer.alloc(2_000));
    const waiting = stream.produceStream();
    assert.equal(waiting.write(Buffer.alloc(6_000)), false);
    const waitingReady = waiting.ready();
    const ending = stream.produceStream();
    const endingAck = ending.end(Buffer.alloc(4_000));
    assert.equal(budget.usedBytes, 11_000);
    stream.close();
    await assert.rejects(waitingReady, /stream on topic staging is closed/);
    await assert.rejects(endingAck, /stream on topic staging is closed/);
    assert.equal(budget.usedBytes, 9_000, 'what was sent stays held until the broker answers');
    exit.ackOne();
    await sentAck;
    assert.equal(budget.usedBytes, 0, 'after the stream closed and the last ack');
    assert.equal(budget.accounts, 0);
    assert.equal(exit.pending.length, 0, 'nothing dropped was produced');
  });

  it('refuses a value larger than the whole budget, naming the budget', async () => {
    const exit = new SlowExit();
    const budget = new StagingBudget(4_000);
    const stream = open(exit, budget);
    const staged = stream.produceStream();
    assert.equal(staged.write(Buffer.alloc(3_000)), true);
    assert.throws(
      () => staged.write(Buffer.alloc(2_000)),
      (error: unknown) =>
        error instanceof MessageTooLargeError &&
        error.limit === 4_000 &&
        /staging\.maxBytes of binding test \(4000\)/.test(error.message),
    );
    assert.equal(budget.usedBytes, 0);
    await assert.rejects(staged.end(), /is failed/);
    stream.close();
  });

  it('refuses an announced size past the topic or the budget before any chunk, and takes one that fits', async () => {
    const exit = new SlowExit();
    const budget = new StagingBudget(4_000);
    const stream = open(exit, budget);
    const pastBudget = stream.produceStream();
    assert.throws(
      () => pastBudget.expect(5_000),
      (error: unknown) =>
        error instanceof MessageTooLargeError && error.limit === 4_000 && error.size === 5_000,
    );
    await assert.rejects(pastBudget.end(), /is failed/);
    const pastTopic = stream.produceStream({ key: 'k' });
    assert.throws(
      () => pastTopic.expect(MAX_MESSAGE_BYTES),
      (error: unknown) =>
        error instanceof MessageTooLargeError &&
        error.limit === MAX_MESSAGE_BYTES &&
        /max\.message\.bytes/.test(error.message),
    );
    await assert.rejects(pastTopic.end(), /is failed/);
    assert.equal(budget.usedBytes, 0);

    const fits = stream.produceStream();
    fits.expect(1_000);
    assert.equal(fits.write(Buffer.alloc(1_000)), true);
    fits.abort();
    assert.equal(budget.usedBytes, 0);
    stream.close();
  });
});

describe('cache_client binding staging', () => {
  function serverBinding(exit: SlowExit): Binding & CacheServerApi {
    return Object.assign(exit, { name: 's', start: () => Promise.resolve(), stop: () => Promise.resolve() });
  }

  it('takes maxBytesPerConnection from its options and counts the waits it causes', async () => {
    const exit = new SlowExit();
    const registry = new Registry();
    const cc = new CacheClientBinding({
      config: {
        name: 'cc-share',
        type: 'kafka',
        kind: 'cache_client',
        options: { staging: { maxBytes: 64_000, maxBytesPerConnection: 12_000 } },
        routes: [],
        exit: 's',
      },
      logger: pino({ level: 'silent' }),
      metrics: registry,
      stateDir: tmpdir(),
      lookup: () => serverBinding(exit),
    });
    await cc.start(AbortSignal.timeout(1000));
    assert.equal(cc.staging.maxBytesPerOwner, 12_000);
    const stream = await cc.open('staging', { capabilities: 'produce' });
    const connection = {};
    const first = stream.produceStream({}, connection);
    const second = stream.produceStream({}, connection);
    assert.equal(first.write(Buffer.alloc(9_000)), true);
    assert.equal(second.write(Buffer.alloc(5_000)), false, 'past the share beside the oldest claim');
    assert.equal(stream.produceStream({}, {}).write(Buffer.alloc(5_000)), true, 'another connection');
    const text = await registry.metrics();
    assert.match(text, /kgate_cache_client_staging_connection_waits_total\{binding="cc-share"\} 1/);
    await cc.stop(AbortSignal.timeout(1000));
    assert.equal(cc.staging.usedBytes, 0);
  });

  it('takes staging.maxBytes from its options and reports staged bytes and waits', async () => {
    const exit = new SlowExit();
    const registry = new Registry();
    const context: BindingContext = {
      config: {
        name: 'cc-staging',
        type: 'kafka',
        kind: 'cache_client',
        options: { staging: { maxBytes: 12_000 } },
        routes: [],
        exit: 's',
      },
      logger: pino({ level: 'silent' }),
      metrics: registry,
      stateDir: tmpdir(),
      lookup: () => serverBinding(exit),
    };
    const cc = new CacheClientBinding(context);
    await cc.start(AbortSignal.timeout(1000));
    assert.equal(cc.staging.maxBytes, 12_000);
    const stream = await cc.open('staging', { capabilities: 'produce' });
    const first = stream.produceStream();
    const firstAck = first.end(Buffer.alloc(8_000));
    await settles(firstAck);
    const second = stream.produceStream();
    assert.equal(second.write(Buffer.alloc(5_000)), false);
    const text = await registry.metrics();
    assert.match(text, /kgate_cache_client_staged_bytes\{binding="cc-staging"\} 8000/);
    assert.match(text, /kgate_cache_client_staging_waits_total\{binding="cc-staging"\} 1/);
    assert.match(text, /kgate_cache_client_staging_connection_waits_total\{binding="cc-staging"\} 0/);
    assert.equal(cc.staging.maxBytesPerOwner, 1_500, 'an eighth of the budget by default');
    await cc.stop(AbortSignal.timeout(1000));
    exit.ackOne();
    await firstAck;
    assert.equal(cc.staging.usedBytes, 0, 'stop drops what was staged');
  });
});

/** A small deterministic generator, so a failure can be replayed. */
function seeded(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still running after ${ms} ms: a deadlock`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
