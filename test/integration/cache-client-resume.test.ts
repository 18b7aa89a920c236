import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import {
  formatProgress,
  parseProgress,
  type CacheMessage,
} from '../../src/bindings/kafka/cache_client/index.ts';
import { chainAvailable, startChain, str, take, waitFor, type Chain } from './cache-client-harness.ts';

let chain: Chain;

before(async () => {
  if (chainAvailable) chain = await startChain('cc-resume');
});

after(async () => {
  if (chainAvailable) await chain?.stop();
});

const RECONNECTS = Number(process.env['KGATE_CC_RECONNECTS'] ?? 8);

describe('cache_client resume from progress under continuous produce', { skip: !chainAvailable }, () => {
  it('delivers every message exactly once across several reconnects', async () => {
    const partitions = 4;
    const t = await chain.topic(partitions);
    const producer = await chain.client.open(t, { capabilities: 'produce' });
    let produced = 0;
    let producing = true;
    let produceError: unknown;
    // Keyed, so the default partitioner spreads them; a few in flight at a time, never pausing
    // while the consumer disconnects and reconnects.
    const production = (async () => {
      try {
        while (producing) {
          const base = produced;
          await Promise.all(
            Array.from({ length: 20 }, (_, i) =>
              producer.produce({ key: `key-${(base + i) % 97}`, value: String(base + i) }),
            ),
          );
          produced += 20;
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      } catch (error) {
        produceError = error;
      }
    })();

    const seen = new Map<string, number>();
    const lastOffset = new Map<number, bigint>();
    const record = (m: CacheMessage): void => {
      const v = str(m.value);
      seen.set(v, (seen.get(v) ?? 0) + 1);
      const before = lastOffset.get(m.partition);
      assert.ok(
        before === undefined || m.offset > before,
        `partition ${m.partition} went back to ${m.offset}`,
      );
      lastOffset.set(m.partition, m.offset);
    };

    await waitFor('the first messages', () => produced >= 100);
    let progress: string | undefined;
    for (let round = 0; round < RECONNECTS; round++) {
      const stream = await chain.client.open(
        t,
        progress === undefined ? { defaultOffset: 'historical' } : { partitions: parseProgress(progress) },
      );
      const batch = await take(stream, 150 + ((round * 37) % 200));
      for (const m of batch) record(m);
      const last = batch[batch.length - 1];
      assert.ok(last);
      // Progress travels as the string a client would keep, and the stream's own view agrees.
      progress = formatProgress(last.progress);
      assert.equal(formatProgress(stream.progress), progress);
      // Half the rounds leave a next() pending when they disconnect: it must not consume anything.
      if (round % 2 === 1) void stream.next().catch(() => undefined);
      stream.close();
    }
    producing = false;
    await production;
    producer.close();
    assert.equal(produceError, undefined);

    assert.ok(progress !== undefined);
    const last = await chain.client.open(t, { partitions: parseProgress(progress) });
    const rest = await take(last, produced - [...seen.values()].reduce((a, b) => a + b, 0), 30_000);
    for (const m of rest) record(m);
    last.close();

    const duplicates = [...seen].filter(([, n]) => n > 1).map(([v]) => v);
    assert.deepEqual(duplicates, [], 'no message twice');
    const missing = Array.from({ length: produced }, (_, i) => String(i)).filter((v) => !seen.has(v));
    assert.deepEqual(missing, [], 'no message lost');
    assert.equal(seen.size, produced);
    assert.ok(produced >= 1_000, `only ${produced} produced`);
  });
});
