import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { KafkaClient, type KafkaRecord } from '../../src/bindings/kafka/client/index.ts';
import { startKafka, type KafkaCluster } from '../../src/embedded/kafka/index.ts';
import { until } from '../support/until.ts';

// Fetch and produce share one connection per broker, and a broker answers a connection's
// requests one at a time: these check that a produce does not wait out an idle fetch's long poll.
// The waits are made long, so that a produce stuck behind one is seconds away from one that is
// not, however slow a loaded machine makes each round trip.

/** The long poll of a connection that carries produce only after a quiet spell. */
const FETCH_MAX_WAIT_MS = 10_000;
/** The shorter poll once the connection carries produce: what the first produce after a quiet spell may wait. */
const FETCH_MAX_WAIT_PRODUCING_MS = 500;
/** The long poll of the fresh client in the second test, which waits out one of them by design. */
const FIRST_PRODUCE_FETCH_WAIT_MS = 4_000;

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
    fetchMaxWaitProducingMs: FETCH_MAX_WAIT_PRODUCING_MS,
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

      // Behind a fetch held for the full wait, a produce 1.2-1.5 s into it waits over 8 s; behind
      // the producing wait at most 0.5 s, plus a round trip that a load average of 25 stretched to
      // a quarter of a second. 2.5 s is several times away from either.
      const worstQuiet = Math.max(...quiet);
      assert.ok(
        worstQuiet < 2_500,
        `a produce after a quiet spell took ${worstQuiet.toFixed(1)} ms (fetchMaxWaitMs ${FETCH_MAX_WAIT_MS})`,
      );
      // While produce is active fetches do not wait at the broker, so back-to-back produces are
      // round trips. Were fetches held for the producing wait, about every other produce (the
      // first one after the quiet spell too) would wait some 0.5 s behind one; round trips that
      // slow come a few at most, however loaded the machine.
      const held = active.filter((ms) => ms >= FETCH_MAX_WAIT_PRODUCING_MS / 2);
      assert.ok(
        held.length <= active.length / 5,
        `${held.length} of ${active.length} back-to-back produces took ${FETCH_MAX_WAIT_PRODUCING_MS / 2} ms or more`,
      );
      assert.equal(client.connectionsOpened, 1, 'fetch and produce share one connection');

      // The fetch went on all along and still sees what is written to its partition.
      await client.produce(idle, 0, [{ value: Buffer.from('arrives') }]);
      await until('the fetch to deliver', () => received.length > 0, 30_000);
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
      fetchMaxWaitMs: FIRST_PRODUCE_FETCH_WAIT_MS,
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
      // Behind the one fetch already held it waits under 4 s; behind a held fetch for each of the
      // three requests, over 10 s. 6 s leaves each side seconds of room for a loaded machine.
      assert.ok(
        took < FIRST_PRODUCE_FETCH_WAIT_MS * 1.5,
        `the first produce took ${took.toFixed(0)} ms (fetchMaxWaitMs ${FIRST_PRODUCE_FETCH_WAIT_MS})`,
      );
      assert.equal(fresh.connectionsOpened, 1, 'fetch and produce share one connection');
    } finally {
      stop.abort();
      await consuming;
      await fresh.close();
    }
  });
});
