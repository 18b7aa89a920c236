import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { CacheMessage } from '../../src/bindings/kafka/cache_client/index.ts';
import { CacheServerBinding, partitionForKey } from '../../src/bindings/kafka/cache_server/index.ts';
import { chainAvailable, nextWithin, startChain, str, type Chain } from './cache-client-harness.ts';

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
const PARTITIONS = 4;
const VALUE_BYTES = 1_024;
// The stream's cap on read buffers across partitions, plus one partition's read.
const STREAM_BUFFER_LIMIT = 1024 * 1024 + 64 * 1024;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('cache_client slow consumer on a hot compacted topic', { skip: !chainAvailable }, () => {
  it('receives only current values and keeps its memory flat', async () => {
    const t = await chain.topic(PARTITIONS, { 'cleanup.policy': 'compact' });
    const cacheServer = chain.engine.binding('cache');
    assert.ok(cacheServer instanceof CacheServerBinding);
    const cached = await cacheServer.attach(t);
    const padding = 'x'.repeat(VALUE_BYTES);
    const keyOf = (seq: number): string => `key-${seq % KEYS}`;
    const seqOf = (value: Buffer | null): number => Number(str(value).split(':')[0]);
    // Where each value lands: its key's partition (the producer's murmur2), and there the next
    // offset, as one idempotent producer writing a fresh topic assigns them.
    const partitionOf: number[] = [];
    const offsetOf: bigint[] = [];
    const nextOffset = Array.from({ length: PARTITIONS }, () => 0n);

    let produced = 0;
    const produceRun = async (): Promise<void> => {
      const base = produced;
      for (let seq = base; seq < base + PER_RUN; seq++) {
        const p = partitionForKey(keyOf(seq), PARTITIONS);
        partitionOf[seq] = p;
        offsetOf[seq] = nextOffset[p] ?? 0n;
        nextOffset[p] = (nextOffset[p] ?? 0n) + 1n;
      }
      await chain.kafka.produce(
        t,
        Array.from({ length: PER_RUN }, (_, i) => ({
          key: keyOf(base + i),
          value: `${base + i}:${padding}`,
        })),
      );
      produced += PER_RUN;
    };

    /** How far the cache held each partition: taken before a next() call, what the stream had at least. */
    const cacheEnds = (): bigint[] =>
      Array.from({ length: PARTITIONS }, (_, p) => (cached.isReady(p) ? cached.store(p).nextOffset : 0n));

    await produceRun();
    const stream = await chain.client.open(t);
    const violations: string[] = [];
    const lastSeq = new Map<string, number>();
    let delivered = 0;
    let maxBuffered = 0;
    let producing = true;
    const check = (m: CacheMessage, held: readonly bigint[]): void => {
      assert.ok(m.key !== null);
      const key = m.key.toString();
      const seq = seqOf(m.value);
      if (m.partition !== partitionOf[seq] || m.offset !== offsetOf[seq])
        violations.push(`${key}: ${seq} at ${m.partition}/${m.offset}, not where it was produced`);
      const before = lastSeq.get(key);
      if (before !== undefined && seq <= before) violations.push(`${key}: ${seq} after ${before}`);
      lastSeq.set(key, seq);
      // The stream picks a value when it reads it, from a cache that holds at least what it held
      // before next() was called: if the key's next value was in the cache by then, this one had
      // been replaced and should have been skipped. How far the cache trails the broker (seconds
      // on a loaded machine) does not matter; only what the cache held does.
      const newer = seq + KEYS;
      const offset = offsetOf[newer];
      const p = partitionOf[newer];
      if (offset !== undefined && p !== undefined && offset < (held[p] ?? 0n))
        violations.push(`${key}: got ${seq} after the cache held ${newer} (${p}/${offset}, end ${held[p]})`);
    };
    // A consumer that takes a message every few milliseconds, far slower than the topic moves.
    const consuming = (async () => {
      while (producing) {
        const held = cacheEnds();
        const got = await stream.next();
        if (got.done === true) return;
        delivered++;
        maxBuffered = Math.max(maxBuffered, stream.bufferedBytes, chain.client.bufferedBytes);
        check(got.value, held);
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
    const finalSeq = (k: number): number => {
      let last = produced - KEYS + k;
      while (keyOf(last) !== `key-${k}`) last--;
      return last;
    };
    const caughtUp = (): boolean =>
      Array.from({ length: KEYS }, (_, k) => k).every((k) => lastSeq.get(`key-${k}`) === finalSeq(k));
    let tail = 0;
    const deadline = Date.now() + 60_000;
    while (!caughtUp()) {
      const held = cacheEnds();
      const got = await nextWithin(stream, Math.max(1, deadline - Date.now()));
      if ('timeout' in got) break;
      tail++;
      check(got.message, held);
    }
    // Nothing is left to deliver once every key is at its last value.
    const extra = await nextWithin(stream, 500);
    if (!('timeout' in extra)) violations.push(`after the last values: ${str(extra.message.key)}`);
    stream.close();
    cached.release();
    for (let k = 0; k < KEYS; k++)
      assert.equal(lastSeq.get(`key-${k}`), finalSeq(k), `final value of key-${k}`);

    const total = delivered + tail;
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
