import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { startKafka, type EmbeddedKafka, type ProducedMessage } from '../../src/embedded/kafka/index.ts';
import {
  consumeMessages,
  javaPartition,
  sendMessages,
  withAdmin,
  type ClientSecurity,
} from './embedded-kafka-clients.ts';

let kafka: EmbeddedKafka;
let startupMs = 0;

before(async () => {
  const started = Date.now();
  kafka = await startKafka();
  startupMs = Date.now() - started;
});

after(async () => {
  await kafka?.stop();
});

/** Every byte value, plus the bytes a line- or NUL-delimited pipe would mangle. */
const ALL_BYTES = Buffer.concat([
  Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
  Buffer.from('\n\r\n\0\xff', 'latin1'),
]);

function asBuffer(value: string | Buffer): Buffer {
  return typeof value === 'string' ? Buffer.from(value) : value;
}

/** The client nests the reason (bad credentials, untrusted certificate) in `errors` and `cause`. */
function errorChain(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const nested = (error as Error & { errors?: unknown[] }).errors ?? [];
  return [
    error.message,
    ...nested.map(errorChain),
    error.cause === undefined ? '' : errorChain(error.cause),
  ].join(' / ');
}

describe('embedded Kafka, one broker', () => {
  it('starts one KRaft broker with PLAINTEXT, SASL_PLAINTEXT and SSL listeners', async (t) => {
    t.diagnostic(`broker startup took ${startupMs} ms`);
    assert.deepEqual(kafka.brokerIds, [1]);
    for (const bootstrap of [kafka.bootstrap, kafka.saslBootstrap, kafka.sslBootstrap]) {
      assert.match(bootstrap, /^127\.0\.0\.1:\d+$/);
    }
    const metadata = await withAdmin(kafka.bootstrap, (admin) => admin.metadata({ topics: [] }));
    assert.deepEqual([...metadata.brokers.keys()], [1]);
  });

  it('delivers what kcat produced byte for byte to an independent consumer', async () => {
    const topic = 'kcat-bytes';
    await kafka.createTopic(topic, { partitions: 3 });
    const messages: ProducedMessage[] = [
      { key: ALL_BYTES, value: Buffer.concat([ALL_BYTES, ALL_BYTES]), partition: 0 },
      { key: null, value: 'no key', partition: 0 },
      { key: '', value: 'empty key', partition: 0 },
      { key: 'empty-value', value: '', partition: 0 },
      { key: 'tombstone', value: null, partition: 0 },
      { key: 'with-headers', value: 'h', partition: 0, headers: { 'content-type': 'text/plain', empty: '' } },
      { key: 'ünïcødé ☃', value: 'välüe\nwith newline', partition: 0 },
      { key: 'explicit', value: 'partition 2', partition: 2 },
      // No partition: kcat must pick the same partition as Java's default partitioner.
      { key: 'routed-a', value: 'a' },
      { key: 'routed-b', value: 'b' },
      { key: 'routed-c', value: 'c' },
    ];
    await kafka.produce(topic, messages);

    const received = await consumeMessages(kafka.bootstrap, topic, messages.length);
    assert.equal(received.length, messages.length);

    const partition0 = received.filter((m) => m.partition === 0 && m.offset < 7n);
    partition0.sort((a, b) => Number(a.offset - b.offset));
    assert.deepEqual(
      partition0.map((m) => m.offset),
      [0n, 1n, 2n, 3n, 4n, 5n, 6n],
      'partition 0 holds the seven explicitly placed messages, in order',
    );
    for (const [index, message] of partition0.entries()) {
      const sent = messages[index];
      assert.ok(sent !== undefined);
      const label = `message ${index}`;
      if (sent.key === null || sent.key === undefined) assert.equal(message.key, undefined, `${label} key`);
      else assert.deepEqual(Buffer.from(message.key), asBuffer(sent.key), `${label} key`);
      if (sent.value === null) assert.equal(message.value, undefined, `${label} value`);
      else assert.deepEqual(Buffer.from(message.value), asBuffer(sent.value), `${label} value`);
      const headers = Object.fromEntries(
        [...message.headers.entries()].map(([k, v]) => [k.toString('utf8'), v.toString('utf8')]),
      );
      assert.deepEqual(headers, sent.headers ?? {}, `${label} headers`);
    }

    const explicit = received.find((m) => m.key?.toString() === 'explicit');
    assert.equal(explicit?.partition, 2);
    for (const key of ['routed-a', 'routed-b', 'routed-c']) {
      const message = received.find((m) => m.key?.toString() === key);
      assert.equal(message?.partition, javaPartition(Buffer.from(key), 3), `partition of ${key}`);
    }
  });

  for (const [mechanism, user] of [
    ['PLAIN', 'plain'],
    ['SCRAM-SHA-256', 'scram256'],
    ['SCRAM-SHA-512', 'scram512'],
  ] as const) {
    it(`authenticates SASL ${mechanism} and serves metadata and produce on the SASL listener`, async () => {
      const { username, password } = kafka.users[user];
      const security: ClientSecurity = { sasl: { mechanism, username, password } };
      const topic = `sasl-${user}`;
      await kafka.createTopic(topic);
      const metadata = await withAdmin(
        kafka.saslBootstrap,
        (admin) => admin.metadata({ topics: [topic] }),
        security,
      );
      assert.equal(metadata.topics.get(topic)?.partitionsCount, 1);
      await sendMessages(
        kafka.saslBootstrap,
        [{ topic, key: Buffer.from(username), value: Buffer.from(mechanism) }],
        security,
      );
      const [message] = await consumeMessages(kafka.saslBootstrap, topic, 1, { security });
      assert.equal(message?.value.toString(), mechanism);
    });
  }

  it('rejects a wrong SCRAM password and a wrong PLAIN password', async () => {
    for (const sasl of [
      { mechanism: 'SCRAM-SHA-256', username: kafka.users.scram256.username, password: 'wrong' },
      { mechanism: 'SCRAM-SHA-512', username: kafka.users.scram512.username, password: 'wrong' },
      { mechanism: 'PLAIN', username: kafka.users.plain.username, password: 'wrong' },
    ] as const) {
      await assert.rejects(
        withAdmin(kafka.saslBootstrap, (admin) => admin.metadata({ topics: [] }), { sasl }),
        (error: unknown) => /SASL authentication failed/.test(errorChain(error)),
        `${sasl.mechanism} with a wrong password must fail`,
      );
    }
  });

  it('serves TLS with a certificate that verifies against the generated CA', async () => {
    const ca = readFileSync(kafka.caFile);
    const topic = 'tls';
    await kafka.createTopic(topic);
    const security: ClientSecurity = { tls: { ca } };
    await sendMessages(kafka.sslBootstrap, [{ topic, value: Buffer.from('over tls') }], security);
    const [message] = await consumeMessages(kafka.sslBootstrap, topic, 1, { security });
    assert.equal(message?.value.toString(), 'over tls');

    // Without the CA the same listener must be refused: the certificate really is checked.
    await assert.rejects(
      withAdmin(kafka.sslBootstrap, (admin) => admin.metadata({ topics: [] }), { tls: {} }),
      (error: unknown) => /certificate/i.test(errorChain(error)),
    );
  });

  it('creates topics with configs, deletes them, and allows the name again', async () => {
    const topic = 'compacted';
    await kafka.createTopic(topic, { partitions: 2, configs: { 'cleanup.policy': 'compact' } });
    const [description] = await withAdmin(kafka.bootstrap, (admin) =>
      admin.describeConfigs({
        resources: [{ resourceType: 2, resourceName: topic, configurationKeys: ['cleanup.policy'] }],
      }),
    );
    assert.equal(description?.configs.find((c) => c.name === 'cleanup.policy')?.value, 'compact');

    await kafka.deleteTopic(topic);
    const topics = await withAdmin(kafka.bootstrap, (admin) => admin.listTopics());
    assert.ok(!topics.includes(topic));
    await kafka.createTopic(topic, { partitions: 1 });
  });

  it('deletes records below an offset', async () => {
    const topic = 'delete-records';
    await kafka.createTopic(topic);
    await kafka.produce(
      topic,
      Array.from({ length: 5 }, (_, i) => ({ key: `k${i}`, value: `v${i}` })),
    );
    await kafka.deleteRecords(topic, 0, 3n);
    const [offsets] = await withAdmin(kafka.bootstrap, (admin) =>
      admin.listOffsets({ topics: [{ name: topic, partitions: [{ partitionIndex: 0, timestamp: -2n }] }] }),
    );
    assert.equal(offsets?.partitions[0]?.offset, 3n);
    const remaining = await consumeMessages(kafka.bootstrap, topic, 2);
    assert.deepEqual(
      remaining.map((m) => m.value.toString()),
      ['v3', 'v4'],
    );
  });
});
