import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { KafkaClient, type KafkaRecord } from '../../src/bindings/kafka/client/index.ts';
import { startKafka, type KafkaCluster } from '../../src/embedded/kafka/index.ts';

let kafka: KafkaCluster;
let client: KafkaClient | undefined;

before(async () => {
  kafka = await startKafka({ brokers: 3 });
});

after(async () => {
  await client?.close();
  await kafka?.stop();
});

describe('kafka client with a failing leader', () => {
  it('follows the new leader for fetch and produce, keeping the stream open', async () => {
    const topic = 'failover';
    await kafka.createTopic(topic, { partitions: 1, replicationFactor: 3 });
    client = new KafkaClient({
      servers: kafka.bootstrap.split(','),
      retryInitialMs: 50,
      retryMaxMs: 500,
      requestTimeoutMs: 5_000,
    });
    const c = client;
    await c.produce(topic, 0, [{ value: 'before-1' }, { value: 'before-2' }]);

    const seen: KafkaRecord[] = [];
    const controller = new AbortController();
    const reading = (async () => {
      for await (const result of c.fetch(topic, 0, 0n, { signal: controller.signal })) {
        for (const batch of result.batches) seen.push(...batch.records);
        if (seen.length >= 4) return;
      }
    })();

    const leader = (await c.metadata([topic])).topics[0]?.partitions[0]?.leader;
    assert.ok(leader !== undefined && leader >= 0);
    await kafka.stopBroker(leader);
    const produced = await c.produce(topic, 0, [{ value: 'after-1' }, { value: 'after-2' }]);
    assert.deepEqual(produced.offsets, [2n, 3n]);

    const timer = setTimeout(() => controller.abort(), 60_000);
    await reading;
    clearTimeout(timer);
    assert.deepEqual(
      seen.map((r) => r.value?.toString()),
      ['before-1', 'before-2', 'after-1', 'after-2'],
    );
    const newLeader = (await c.metadata([topic])).topics[0]?.partitions[0]?.leader;
    assert.notEqual(newLeader, leader);
    await kafka.startBroker(leader);
  });
});
