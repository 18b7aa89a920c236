import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { chainAvailable, drain, startChain, str, take, type Chain } from './cache-client-harness.ts';

let chain: Chain;

before(async () => {
  if (chainAvailable) chain = await startChain('cc-live');
});

after(async () => {
  if (chainAvailable) await chain?.stop();
});

const LIVE_MESSAGES = Number(process.env['KGATE_CC_LIVE_MESSAGES'] ?? 2_000);
const LIVE_RATE = Number(process.env['KGATE_CC_LIVE_RATE'] ?? 150);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('cache_client live streams', { skip: !chainAvailable }, () => {
  it('keeps delivering every new message at a low rate across many partitions', async () => {
    const partitions = 16;
    const t = await chain.topic(partitions);
    // Opened on a topic the cache has never followed: "live" must still mean after open().
    const stream = await chain.client.open(t, { defaultOffset: 'live' });
    const producer = await chain.client.open(t, { capabilities: 'produce' });
    const received: string[] = [];
    const byPartition = new Map<number, number>();
    const consuming = (async () => {
      for await (const m of stream) {
        received.push(str(m.value));
        byPartition.set(m.partition, (byPartition.get(m.partition) ?? 0) + 1);
        if (received.length >= LIVE_MESSAGES) break;
      }
    })();
    // One message at a time, so the stream is idle and woken again for almost every message.
    const tick = 1000 / LIVE_RATE;
    const started = Date.now();
    const acks: Promise<unknown>[] = [];
    for (let i = 0; i < LIVE_MESSAGES; i++) {
      acks.push(producer.produce({ key: `key-${i}`, value: String(i) }));
      const due = started + (i + 1) * tick - Date.now();
      if (due > 0) await sleep(due);
    }
    await Promise.all(acks);
    producer.close();
    const deadline = setTimeout(() => stream.close(), 20_000);
    await consuming;
    clearTimeout(deadline);
    stream.close();
    const missing = Array.from({ length: LIVE_MESSAGES }, (_, i) => String(i)).filter(
      (v) => !received.includes(v),
    );
    assert.deepEqual(missing.slice(0, 20), [], `${missing.length} of ${LIVE_MESSAGES} never arrived`);
    assert.equal(received.length, LIVE_MESSAGES);
    assert.equal(new Set(received).size, LIVE_MESSAGES, 'no duplicates');
    assert.equal(byPartition.size, partitions, 'every partition delivered');
  });

  it('starts historical streams at the log start and live ones at the head of a delete topic', async () => {
    const t = await chain.topic(3);
    await chain.kafka.produce(
      t,
      Array.from({ length: 30 }, (_, i) => ({ key: `k${i % 5}`, value: `old${i}`, partition: i % 3 })),
    );
    const historical = await chain.client.open(t, { defaultOffset: 'historical' });
    const old = await take(historical, 30);
    // Every record of a delete topic, superseded keys included: no conflation.
    assert.deepEqual(
      old.map((m) => str(m.value)).sort(),
      Array.from({ length: 30 }, (_, i) => `old${i}`).sort(),
    );
    const live = await chain.client.open(t, { defaultOffset: 'live' });
    const { messages: none, pending } = await drain(live, 1_000);
    assert.deepEqual(none, [], 'nothing old on a live stream');
    await chain.kafka.produce(t, [
      { key: 'k1', value: 'new1' },
      { key: 'k2', value: 'new2' },
    ]);
    const first = await pending;
    assert.equal(first.done, false);
    const got = [str(first.value.value), ...(await take(live, 1)).map((m) => str(m.value))];
    assert.deepEqual(got.sort(), ['new1', 'new2']);
    assert.deepEqual((await take(historical, 2)).map((m) => str(m.value)).sort(), ['new1', 'new2']);
    // Live is only where a stream without progress starts: resuming a live stream's progress
    // before the new messages replays them.
    const resumed = await chain.client.open(t, { partitions: live.progress });
    assert.deepEqual((await drain(resumed, 700)).messages, []);
    resumed.close();
    const from = new Map([...live.progress].map(([p]) => [p, 0n] as const));
    const again = await chain.client.open(t, { partitions: from });
    assert.equal((await take(again, 32)).length, 32);
    again.close();
    historical.close();
    live.close();
  });
});
