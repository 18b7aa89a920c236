import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { KafkaClient, type KafkaRecord } from '../../src/bindings/kafka/client/index.ts';
import { startKafka, type KafkaCluster } from '../../src/embedded/kafka/index.ts';

// Fetch and produce share one connection per broker, and a broker answers a connection's
// requests one at a time: these check that a produce does not wait out an idle fetch's long poll.

const FETCH_MAX_WAIT_MS = 1_000;

let kafka: KafkaCluster;
let client: KafkaClient;

let topicCounter = 0;
async function topic(): Promise<string> {
  const name = `fp${++topicCounter}-${Date.now()}`;
  await kafka.createTopic(name, { partitions: 1 });
  return name;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function timedProduce(t: string, value: string): Promise<number> {
  const started = performance.now();
  await client.produce(t, 0, [{ value: Buffer.from(value) }]);
  return performance.now() - started;
}

before(async () => {
  kafka = await startKafka();
  client = new KafkaClient({
    servers: kafka.bootstrap.split(','),
    retryMaxMs: 500,
    fetchMaxWaitMs: FETCH_MAX_WAIT_MS,
  });
});

after(async () => {
  await client?.close();
  await kafka?.stop();
});

describe('produce while a fetch of an idle partition is outstanding on the same connection', () => {
  it('is acknowledged well within the fetch wait, and the fetch still delivers', async () => {
    const idle = await topic();
    const target = await topic();
    // The first produce sets up the producer id and metadata; later ones are what is measured.
    await client.produce(target, 0, [{ value: Buffer.from('warm-up') }]);

    const stop = new AbortController();
    const received: KafkaRecord[] = [];
    const consuming = (async () => {
      for await (const result of client.fetch(idle, 0, 0n, { signal: stop.signal })) {
        for (const batch of result.batches) received.push(...batch.records);
      }
    })();
    try {
      // Quiet for longer than the produce activity window: the fetch is long-polling again.
      await sleep(1_500);
      const quiet: number[] = [];
      for (let i = 0; i < 5; i++) {
        quiet.push(await timedProduce(target, `quiet-${i}`));
        await sleep(1_200 + Math.random() * 300);
      }
      const active: number[] = [];
      for (let i = 0; i < 50; i++) active.push(await timedProduce(target, `active-${i}`));

      const worstQuiet = Math.max(...quiet);
      assert.ok(
        worstQuiet < 150,
        `a produce after a quiet spell took ${worstQuiet.toFixed(1)} ms (fetchMaxWaitMs ${FETCH_MAX_WAIT_MS})`,
      );
      const sorted = active.toSorted((a, b) => a - b);
      const median = sorted[Math.floor(sorted.length / 2)] ?? Infinity;
      assert.ok(median < 20, `back-to-back produces took ${median.toFixed(1)} ms at the median`);
      assert.equal(client.connectionsOpened, 1, 'fetch and produce share one connection');

      // The fetch went on all along and still sees what is written to its partition.
      await client.produce(idle, 0, [{ value: Buffer.from('arrives') }]);
      const deadline = Date.now() + 5_000;
      while (received.length === 0 && Date.now() < deadline) await sleep(20);
      assert.equal(received[0]?.value?.toString(), 'arrives');
    } finally {
      stop.abort();
      await consuming;
    }
  });
});

describe('the first produce of a client that has only fetched so far', () => {
  it('waits behind at most the one fetch already held by the broker', async () => {
    const idle = await topic();
    const target = await topic();
    const fresh = new KafkaClient({
      servers: kafka.bootstrap.split(','),
      retryMaxMs: 500,
      fetchMaxWaitMs: FETCH_MAX_WAIT_MS,
    });
    const stop = new AbortController();
    const consuming = (async () => {
      for await (const result of fresh.fetch(idle, 0, 0n, { signal: stop.signal })) void result;
    })();
    try {
      await sleep(1_500);
      // Metadata for the new topic, InitProducerId and the Produce itself: three requests, each of
      // which would queue behind a fetch held for the full wait if the fetcher did not know.
      const started = performance.now();
      await fresh.produce(target, 0, [{ value: Buffer.from('first') }]);
      const took = performance.now() - started;
      assert.ok(
        took < FETCH_MAX_WAIT_MS + 400,
        `the first produce took ${took.toFixed(0)} ms (fetchMaxWaitMs ${FETCH_MAX_WAIT_MS})`,
      );
      assert.equal(fresh.connectionsOpened, 1, 'fetch and produce share one connection');
    } finally {
      stop.abort();
      await consuming;
      await fresh.close();
    }
  });
});
