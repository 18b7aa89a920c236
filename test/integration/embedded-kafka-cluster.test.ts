import { strict as assert } from 'node:assert';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { startKafka, type EmbeddedKafka } from '../../src/embedded/kafka/index.ts';
import { consumeMessages, withAdmin } from './embedded-kafka-clients.ts';

let kafka: EmbeddedKafka;
let startupMs = 0;

before(async () => {
  const started = Date.now();
  kafka = await startKafka({ brokers: 3 });
  startupMs = Date.now() - started;
});

after(async () => {
  await kafka?.stop();
});

async function partitionState(bootstrap: string, topic: string) {
  const metadata = await withAdmin(bootstrap, (admin) =>
    admin.metadata({ topics: [topic], forceUpdate: true }),
  );
  const partition = metadata.topics.get(topic)?.partitions[0];
  assert.ok(partition !== undefined, `${topic} has a partition 0`);
  return { brokers: [...metadata.brokers.keys()].sort(), ...partition };
}

describe('embedded Kafka, three brokers', () => {
  it('forms one KRaft quorum of three brokers', async (t) => {
    t.diagnostic(`3-broker startup took ${startupMs} ms`);
    assert.deepEqual(kafka.brokerIds, [1, 2, 3]);
    assert.equal(kafka.bootstrap.split(',').length, 3);
    // Every broker, asked on its own, sees all three.
    for (const id of kafka.brokerIds) {
      const metadata = await withAdmin(kafka.brokerBootstrap(id), (admin) => admin.metadata({ topics: [] }));
      assert.deepEqual([...metadata.brokers.keys()].sort(), [1, 2, 3]);
    }
  });

  it('keeps serving a replicated topic while its leader is down, and takes the leader back', async (t) => {
    const topic = 'replicated';
    // No replication factor given: the cluster default is 3.
    await kafka.createTopic(topic);
    const initial = await partitionState(kafka.bootstrap, topic);
    assert.deepEqual([...initial.replicas].sort(), [1, 2, 3]);
    assert.deepEqual([...initial.isr].sort(), [1, 2, 3]);

    await kafka.produce(topic, [
      { key: 'a', value: 'before-1' },
      { key: 'b', value: 'before-2' },
    ]);

    const leader = initial.leader;
    const survivors = kafka.brokerIds.filter((id) => id !== leader);
    const survivorBootstrap = survivors.map((id) => kafka.brokerBootstrap(id)).join(',');
    const stopping = Date.now();
    await kafka.stopBroker(leader);
    t.diagnostic(`stopping leader ${leader} took ${Date.now() - stopping} ms`);

    const during = await partitionState(survivorBootstrap, topic);
    assert.deepEqual(during.brokers, survivors);
    assert.notEqual(during.leader, leader);
    assert.ok(survivors.includes(during.leader), `new leader ${during.leader} is a survivor`);

    await kafka.produce(topic, [{ key: 'c', value: 'during' }]);
    const whileDown = await consumeMessages(survivorBootstrap, topic, 3);
    assert.deepEqual(
      whileDown.map((m) => m.value.toString()),
      ['before-1', 'before-2', 'during'],
    );

    const starting = Date.now();
    await kafka.startBroker(leader);
    t.diagnostic(`restarting broker ${leader} took ${Date.now() - starting} ms`);
    // The restarted broker catches up from its old data directory and rejoins the ISR.
    let state = await partitionState(kafka.bootstrap, topic);
    for (let i = 0; i < 100 && state.isr.length < 3; i++) {
      await sleep(200);
      state = await partitionState(kafka.bootstrap, topic);
    }
    assert.deepEqual(state.brokers, [1, 2, 3]);
    assert.deepEqual([...state.isr].sort(), [1, 2, 3]);

    await kafka.produce(topic, [{ key: 'd', value: 'after' }]);
    // Read through the restarted broker alone: it serves the cluster again with the same ports.
    const all = await consumeMessages(kafka.brokerBootstrap(leader), topic, 4);
    assert.deepEqual(
      all.map((m) => m.value.toString()),
      ['before-1', 'before-2', 'during', 'after'],
    );
  });
});
