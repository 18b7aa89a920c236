import { strict as assert } from 'node:assert';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import {
  CacheClientBinding,
  MessageTooLargeError,
  type CacheMessage,
  type CacheStream,
  type ProduceAck,
} from '../../src/bindings/kafka/cache_client/index.ts';
import {
  chainAvailable,
  drain,
  nextWithin,
  startChain,
  str,
  take,
  type Chain,
} from './cache-client-harness.ts';
import { javaPartition } from './embedded-kafka-clients.ts';

let chain: Chain;

before(async () => {
  if (chainAvailable) chain = await startChain('cc-produce');
});

after(async () => {
  if (chainAvailable) await chain?.stop();
});

// 45 s of sustained load by default: 17,000 messages and 8 GB in a run on its own here, over a
// hundred times the default 64 MiB staging budget, which is what a staging leak or a lost
// acknowledgement needs to show. Every value is written to disk twice (broker log and cache);
// KGATE_CC_MIXED_MS sets a longer soak.
const MIXED_MS = Number(process.env['KGATE_CC_MIXED_MS'] ?? 45_000);
// The load stops at this many value bytes even before MIXED_MS: a faster machine would otherwise
// produce more than the read-back deadline lets the cache fetch again (9,232 values, 4.4 GB, were
// produced once where 2,100 to 4,700 are usual).
const MIXED_MAX_BYTES = Number(process.env['KGATE_CC_MIXED_MAX_BYTES'] ?? 1_500_000_000);
const sha = (b: Buffer | null): string =>
  createHash('sha256')
    .update(b ?? Buffer.alloc(0))
    .digest('hex');

/** A second cache_client on the chain's cache_server, with its own options. */
async function cacheClient(name: string, options: Record<string, unknown>): Promise<CacheClientBinding> {
  const context = {
    config: { name, type: 'kafka', kind: 'cache_client', options, routes: [], exit: 'cache' },
    logger: pino({ level: 'silent' }),
    metrics: new Registry(),
    stateDir: tmpdir(),
    lookup: (binding: string) => {
      const found = chain.engine.binding(binding);
      if (found === undefined) throw new Error(`no binding ${binding}`);
      return found;
    },
  };
  const client = new CacheClientBinding(context);
  await client.start(AbortSignal.timeout(5_000));
  return client;
}

/** Stages `value` in 64 KiB chunks, waiting for staging room as a writer should. */
async function stage(
  producer: CacheStream,
  key: string,
  value: Buffer,
  onWrite?: () => void,
): Promise<ProduceAck> {
  const staged = producer.produceStream({ key });
  for (let at = 0; at < value.length; at += 64 * 1024) {
    const admitted = staged.write(value.subarray(at, at + 64 * 1024));
    onWrite?.();
    if (!admitted) await staged.ready();
  }
  return staged.end();
}

/**
 * Reads `expected.size` messages and checks each against the sha of its key's value, holding no
 * values: every key exactly once, nothing more within quietMs.
 */
async function readBackOnce(
  reader: CacheStream,
  expected: Map<string, string>,
  timeoutMs: number,
  quietMs = 1_000,
): Promise<void> {
  const left = new Map(expected);
  const deadline = Date.now() + timeoutMs;
  while (left.size > 0) {
    const got = await nextWithin(reader, Math.max(1, deadline - Date.now()));
    if ('timeout' in got) throw new Error(`${left.size} of ${expected.size} messages did not arrive`);
    const key = str(got.message.key);
    const want = left.get(key);
    assert.ok(want !== undefined, `${key} ${expected.has(key) ? 'arrived twice' : 'was never produced'}`);
    assert.equal(sha(got.message.value), want, `value of ${key}`);
    left.delete(key);
  }
  const extra = await nextWithin(reader, quietMs);
  assert.ok('timeout' in extra, 'nothing past the produced messages');
}

describe('cache_client produce through the chain', { skip: !chainAvailable }, () => {
  it('takes 100 parallel producers', async () => {
    const t = await chain.topic(4);
    const producers = await Promise.all(
      Array.from({ length: 100 }, () => chain.client.open(t, { capabilities: 'produce' })),
    );
    const acks = await Promise.all(
      producers.flatMap((p, i) =>
        Array.from({ length: 10 }, (_, j) => p.produce({ key: `p${i}`, value: `${i}-${j}` })),
      ),
    );
    for (const p of producers) p.close();
    assert.equal(acks.length, 1_000);
    const reader = await chain.client.open(t, { defaultOffset: 'historical' });
    const got = await take(reader, 1_000);
    assert.deepEqual((await drain(reader, 500)).messages, []);
    reader.close();
    assert.equal(new Set(got.map((m) => str(m.value))).size, 1_000);
    // Each producer's messages share a key, so one partition, in the order each produce was called.
    for (let i = 0; i < 100; i++) {
      const mine = got.filter((m) => str(m.key) === `p${i}`);
      assert.deepEqual(
        mine.map((m) => str(m.value)),
        Array.from({ length: 10 }, (_, j) => `${i}-${j}`),
      );
    }
  });

  it('produces fragmented and 100 KB values byte for byte, and rejects oversize ones clearly', async () => {
    const t = await chain.topic(1);
    const stream = await chain.client.open(t, {
      capabilities: 'produce_and_fetch',
      defaultOffset: 'historical',
    });
    const big = Array.from({ length: 5 }, () => randomBytes(100 * 1024));
    for (const value of big) await stream.produce({ key: 'big', value });

    const fragmented = randomBytes(300 * 1024);
    const staged = stream.produceStream({ key: 'staged', headers: { kind: 'fragments' } });
    for (let at = 0; at < fragmented.length;) {
      const size = 1 + Math.floor(Math.random() * 9_000);
      staged.write(fragmented.subarray(at, at + size));
      at += size;
    }
    assert.equal(staged.size, fragmented.length);
    await staged.end();

    const limit = stream.produceStream({ key: 'too-big' });
    assert.throws(
      () => {
        for (let i = 0; i < 20; i++) limit.write(Buffer.alloc(100 * 1024));
      },
      (error: unknown) =>
        error instanceof MessageTooLargeError &&
        /max\.message\.bytes/.test(error.message) &&
        error.message.includes(t),
    );
    // Not staged: a plain produce of too much is refused by the broker, and says so.
    await assert.rejects(
      stream.produce({ key: 'too-big', value: Buffer.alloc(2 * 1024 * 1024) }),
      (error: unknown) => {
        assert.ok(error instanceof Error);
        assert.match(error.message, /too large|TOO_LARGE|max\.message\.bytes/i, error.message);
        return true;
      },
    );

    const got = await take(stream, 6);
    assert.deepEqual((await drain(stream, 700)).messages, [], 'nothing of the rejected ones');
    stream.close();
    assert.deepEqual(
      got.slice(0, 5).map((m) => sha(m.value)),
      big.map(sha),
    );
    const last = got[5];
    assert.ok(last);
    assert.equal(str(last.key), 'staged');
    assert.equal(sha(last.value), sha(fragmented));
    assert.deepEqual(
      last.headers.map((h) => `${h.name.toString()}=${str(h.value)}`),
      ['kind=fragments'],
    );
  });

  it('partitions keyed messages where Java and librdkafka murmur2 put them', async () => {
    const partitions = 7;
    const t = await chain.topic(partitions);
    const keys = Array.from({ length: 60 }, (_, i) =>
      i % 3 === 0 ? `key-${i}` : randomBytes(8).toString('hex'),
    );
    const producer = await chain.client.open(t, { capabilities: 'produce' });
    const ours = await Promise.all(keys.map((key) => producer.produce({ key, value: 'ours' })));
    producer.close();
    await chain.kafka.produce(
      t,
      keys.map((key) => ({ key, value: 'theirs' })),
    );
    const reader = await chain.client.open(t, { defaultOffset: 'historical' });
    const got = await take(reader, keys.length * 2);
    reader.close();
    const where = (key: string, value: string): number | undefined =>
      got.find((m: CacheMessage) => str(m.key) === key && str(m.value) === value)?.partition;
    keys.forEach((key, i) => {
      const java = javaPartition(Buffer.from(key), partitions);
      assert.equal(ours[i]?.partition, java, `ack of ${key}`);
      assert.equal(where(key, 'ours'), java, `stored ${key}`);
      assert.equal(where(key, 'theirs'), java, `kcat's ${key}`);
    });
  });

  it('keeps 20 parallel producers of 500 KB values within a 2 MiB staging budget', async () => {
    const budgetBytes = 2 * 1024 * 1024;
    const small = await cacheClient('north-small', { staging: { maxBytes: budgetBytes } });
    const t = await chain.topic(3);
    const producers = await Promise.all(
      Array.from({ length: 20 }, () => small.open(t, { capabilities: 'produce' })),
    );
    const sent = new Map<string, string>();
    let peak = 0;
    const sample = (): void => {
      peak = Math.max(peak, small.staging.usedBytes);
    };
    const sampler = setInterval(sample, 5);
    const acks: ProduceAck[] = [];
    try {
      await Promise.all(
        producers.map(async (p, i) => {
          for (let n = 0; n < 4; n++) {
            const value = randomBytes(500 * 1024);
            const key = `${i}-${n}`;
            sent.set(key, sha(value));
            acks.push(await stage(p, key, value, sample));
          }
        }),
      );
    } finally {
      clearInterval(sampler);
      for (const p of producers) p.close();
    }
    assert.equal(acks.length, 80);
    assert.equal(new Set(acks.map((a) => `${a.partition}:${a.baseOffset}`)).size, 80, 'one offset each');
    assert.ok(peak <= budgetBytes, `staged ${peak} bytes, past the budget`);
    assert.ok(peak > budgetBytes / 4, `staged at most ${peak} bytes: the budget was never tested`);
    assert.ok(small.staging.waits > 0, 'producers waited for room');
    assert.equal(small.staging.usedBytes, 0, 'every acknowledgement gave its bytes back');
    const reader = await small.open(t, { defaultOffset: 'historical' });
    try {
      await readBackOnce(reader, sent, 30_000);
    } finally {
      reader.close();
      await small.stop(AbortSignal.timeout(5_000));
    }
    console.log(`staging budget: peak ${peak} of ${budgetBytes} bytes, ${small.staging.waits} waits`);
  });

  // Concurrent produce calls for one partition are merged into one record batch; two large values
  // merged would pass the broker's 1 MB limit and fail together, which this load provokes. Half the
  // values are staged in chunks through the binding's staging budget.
  it('takes a sustained mixed load of 10 parallel producers with 1 KB to 950 KB values', async () => {
    const t = await chain.topic(3);
    const producers = await Promise.all(
      Array.from({ length: 10 }, () => chain.client.open(t, { capabilities: 'produce' })),
    );
    const staging = chain.client.staging;
    const until = Date.now() + MIXED_MS;
    const sent = new Map<string, string>();
    const acked = new Set<string>();
    let bytes = 0;
    let peakStaged = 0;
    let peakBuffers = 0;
    const baseBuffers = process.memoryUsage().arrayBuffers;
    const sampler = setInterval(() => {
      peakStaged = Math.max(peakStaged, staging.usedBytes);
      peakBuffers = Math.max(peakBuffers, process.memoryUsage().arrayBuffers - baseBuffers);
    }, 20);
    try {
      await Promise.all(
        producers.map(async (p, i) => {
          for (let n = 0; Date.now() < until && bytes < MIXED_MAX_BYTES; n++) {
            const size = 1024 + Math.floor(Math.random() * (950 - 1) * 1024);
            const value = randomBytes(size);
            const key = `${i}-${n}`;
            sent.set(key, sha(value));
            const ack = n % 2 === 0 ? await stage(p, key, value) : await p.produce({ key, value });
            assert.ok(ack.baseOffset >= 0n, `offset of ${key}`);
            assert.ok(!acked.has(key), `${key} acknowledged twice`);
            acked.add(key);
            bytes += size;
          }
        }),
      );
    } finally {
      clearInterval(sampler);
      for (const p of producers) p.close();
    }
    assert.ok(sent.size >= 10, `only ${sent.size} produced`);
    assert.equal(acked.size, sent.size, 'every message acknowledged');
    assert.equal(staging.usedBytes, 0, 'staged bytes all given back');
    assert.ok(peakStaged <= staging.maxBytes, `staged ${peakStaged} bytes`);
    // Ten producers hold at most one value of under 1 MB each, plus what is in flight: buffer
    // memory must not grow with the length of the run.
    assert.ok(peakBuffers < 256 * 1024 * 1024, `buffers grew by ${peakBuffers} bytes`);
    const reader = await chain.client.open(t, { defaultOffset: 'historical' });
    try {
      await readBackOnce(reader, sent, 60_000 + MIXED_MS);
    } finally {
      reader.close();
    }
    console.log(
      `mixed load: ${sent.size} messages, ${(bytes / 1e6).toFixed(0)} MB in ${MIXED_MS} ms; ` +
        `peak staged ${(peakStaged / 1e6).toFixed(1)} MB, peak buffers +${(peakBuffers / 1e6).toFixed(0)} MB`,
    );
  });
});
