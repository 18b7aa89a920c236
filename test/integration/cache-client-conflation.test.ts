import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { chainAvailable, drain, startChain, str, type Chain } from './cache-client-harness.ts';

let chain: Chain;

before(async () => {
  if (chainAvailable) chain = await startChain('cc-conflation');
});

after(async () => {
  if (chainAvailable) await chain?.stop();
});

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

const RUNS = Number(process.env['KGATE_CC_HOT_RUNS'] ?? 20);
const PER_RUN = 2_000;
const KEYS = 50;
const VALUE_BYTES = 1_024;
// How far the cache may trail the broker's acknowledgement: a value superseded longer ago than
// this when it was delivered was stale, not merely racing the feed.
const FEED_LAG_MS = 2_500;
// The stream's cap on read buffers across partitions, plus one partition's read.
const STREAM_BUFFER_LIMIT = 1024 * 1024 + 64 * 1024;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('cache_client slow consumer on a hot compacted topic', { skip: !chainAvailable }, () => {
  it('receives only current values and keeps its memory flat', async () => {
    const t = await chain.topic(4, { 'cleanup.policy': 'compact' });
    const padding = 'x'.repeat(VALUE_BYTES);
    // ackedAt[seq]: when the broker acknowledged the run that carried it.
    const ackedAt: number[] = [];
    const keyOf = (seq: number): string => `key-${seq % KEYS}`;
    const seqOf = (value: Buffer | null): number => Number(str(value).split(':')[0]);

    let produced = 0;
    const produceRun = async (): Promise<void> => {
      const base = produced;
      await chain.kafka.produce(
        t,
        Array.from({ length: PER_RUN }, (_, i) => ({
          key: keyOf(base + i),
          value: `${base + i}:${padding}`,
        })),
      );
      const now = Date.now();
      for (let i = 0; i < PER_RUN; i++) ackedAt[base + i] = now;
      produced += PER_RUN;
    };

    await produceRun();
    const stream = await chain.client.open(t);
    const violations: string[] = [];
    const lastSeq = new Map<string, number>();
    let delivered = 0;
    let maxBuffered = 0;
    let producing = true;
    const check = (key: string, seq: number): void => {
      const before = lastSeq.get(key);
      if (before !== undefined && seq <= before) violations.push(`${key}: ${seq} after ${before}`);
      lastSeq.set(key, seq);
      // Every later value of this key that was acknowledged well before now should have won.
      const now = Date.now();
      for (let later = seq + KEYS; later < produced; later += KEYS) {
        const acked = ackedAt[later];
        if (acked !== undefined && acked < now - FEED_LAG_MS) {
          violations.push(`${key}: got ${seq} at ${now}, ${later} acknowledged at ${acked}`);
          break;
        }
      }
    };
    // A consumer that takes a message every few milliseconds, far slower than the topic moves.
    const consuming = (async () => {
      while (producing) {
        const got = await stream.next();
        if (got.done === true) return;
        const m = got.value;
        delivered++;
        maxBuffered = Math.max(maxBuffered, stream.bufferedBytes, chain.client.bufferedBytes);
        assert.ok(m.key !== null);
        check(m.key.toString(), seqOf(m.value));
        await sleep(5);
      }
    })();

    await produceRun();
    const heapStart = heapAfterGc();
    for (let r = 2; r < RUNS; r++) await produceRun();
    const heapEnd = heapAfterGc();
    producing = false;
    await consuming;

    // Once the topic is quiet the consumer catches up to exactly the last value of every key.
    const { messages: tail } = await drain(stream, 1_500);
    for (const m of tail) {
      assert.ok(m.key !== null);
      check(m.key.toString(), seqOf(m.value));
    }
    stream.close();
    for (let k = 0; k < KEYS; k++) {
      const key = `key-${k}`;
      let last = produced - KEYS + k;
      while (keyOf(last) !== key) last--;
      assert.equal(lastSeq.get(key), last, `final value of ${key}`);
    }

    const total = delivered + tail.length;
    const growth = heapEnd - heapStart;
    const report = `${produced} produced, ${total} delivered, buffered <= ${maxBuffered} B, heap +${(growth / 1e6).toFixed(1)} MB`;
    assert.deepEqual(violations.slice(0, 10), [], report);
    assert.ok(total < produced / 4, `conflation skipped too little: ${report}`);
    assert.ok(maxBuffered <= STREAM_BUFFER_LIMIT, report);
    // Tens of megabytes went through; a stream that held what it had not delivered would grow
    // by about that much.
    assert.ok(growth < 12e6, report);
    console.log(report);
  });
});
