import { strict as assert } from 'node:assert';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { MessageTooLargeError, type CacheMessage } from '../../src/bindings/kafka/cache_client/index.ts';
import { chainAvailable, drain, startChain, str, take, type Chain } from './cache-client-harness.ts';
import { javaPartition } from './embedded-kafka-clients.ts';

let chain: Chain;

before(async () => {
  if (chainAvailable) chain = await startChain('cc-produce');
});

after(async () => {
  if (chainAvailable) await chain?.stop();
});

const MIXED_MS = Number(process.env['KGATE_CC_MIXED_MS'] ?? 12_000);
const sha = (b: Buffer | null): string =>
  createHash('sha256')
    .update(b ?? Buffer.alloc(0))
    .digest('hex');

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

  // Concurrent produce calls for one partition are merged into one record batch; two large values
  // merged would pass the broker's 1 MB limit and fail together, which this load provokes.
  it('takes a mixed load of 10 parallel producers with 1 KB to 950 KB values', async () => {
    const t = await chain.topic(3);
    const producers = await Promise.all(
      Array.from({ length: 10 }, () => chain.client.open(t, { capabilities: 'produce' })),
    );
    const until = Date.now() + MIXED_MS;
    const sent = new Map<string, string>();
    let bytes = 0;
    await Promise.all(
      producers.map(async (p, i) => {
        for (let n = 0; Date.now() < until; n++) {
          const size = 1024 + Math.floor(Math.random() * (950 - 1) * 1024);
          const value = randomBytes(size);
          const key = `${i}-${n}`;
          const staged = n % 2 === 0;
          if (staged) {
            const s = p.produceStream({ key });
            for (let at = 0; at < size; at += 64 * 1024) s.write(value.subarray(at, at + 64 * 1024));
            await s.end();
          } else await p.produce({ key, value });
          sent.set(key, sha(value));
          bytes += size;
        }
      }),
    );
    for (const p of producers) p.close();
    assert.ok(sent.size >= 10, `only ${sent.size} produced`);
    const reader = await chain.client.open(t, { defaultOffset: 'historical' });
    const got = await take(reader, sent.size, 30_000);
    reader.close();
    for (const m of got) assert.equal(sha(m.value), sent.get(str(m.key)), `value of ${str(m.key)}`);
    console.log(`mixed load: ${sent.size} messages, ${(bytes / 1e6).toFixed(0)} MB in ${MIXED_MS} ms`);
  });
});
