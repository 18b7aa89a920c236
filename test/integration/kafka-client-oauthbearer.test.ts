import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import {
  AuthenticationError,
  KafkaClient,
  type KafkaClientOptions,
  type KafkaRecord,
} from '../../src/bindings/kafka/client/index.ts';
import { startKafka, unsecuredToken, type KafkaCluster } from '../../src/embedded/kafka/index.ts';

// Every connection type a client opens (bootstrap, partition leaders for produce and fetch) goes
// to a listener that admits OAUTHBEARER alone, so each one has authenticated with the token.

let kafka: KafkaCluster;
const clients: KafkaClient[] = [];

function client(options: Partial<KafkaClientOptions>): KafkaClient {
  const c = new KafkaClient({ servers: kafka.oauthBootstrap.split(','), retryMaxMs: 500, ...options });
  clients.push(c);
  return c;
}

async function readRecords(c: KafkaClient, topic: string, count: number): Promise<KafkaRecord[]> {
  const out: KafkaRecord[] = [];
  const signal = AbortSignal.timeout(20_000);
  for await (const result of c.fetch(topic, 0, 0n, { signal })) {
    for (const batch of result.batches) if (!batch.control) out.push(...batch.records);
    if (out.length >= count) break;
  }
  return out;
}

before(async () => {
  kafka = await startKafka();
});

after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await kafka?.stop();
});

describe('kafka client with SASL OAUTHBEARER', () => {
  it('authenticates every connection with a token the broker validates', async () => {
    await kafka.createTopic('bearer-events', { partitions: 1 });
    const c = client({ sasl: { mechanism: 'OAUTHBEARER', token: unsecuredToken('kgate-service') } });
    await c.start();
    await c.produce('bearer-events', 0, [{ key: 'k', value: 'with a token' }]);
    const records = await readRecords(c, 'bearer-events', 1);
    assert.equal(records[0]?.value?.toString(), 'with a token');
  });

  it('fails at once on an expired token, saying why and never showing it', async () => {
    const token = unsecuredToken('kgate-service', 60, Date.now() - 3_600_000);
    const c = client({ sasl: { mechanism: 'OAUTHBEARER', token } });
    const started = Date.now();
    await assert.rejects(c.start(), (error: unknown) => {
      if (!(error instanceof AuthenticationError)) throw error;
      assert.equal(
        error.message,
        'SASL authentication failed with OAUTHBEARER: the broker refused the token (invalid_token)',
      );
      assert.ok(!String(error.stack).includes(token.split('.')[1] ?? token), 'no token in the error');
      return true;
    });
    assert.ok(Date.now() - started < 5_000, 'no retries');
  });

  it('is refused by a listener that does not offer OAUTHBEARER, naming what it offers', async () => {
    const c = client({
      servers: kafka.saslBootstrap.split(','),
      sasl: { mechanism: 'OAUTHBEARER', token: unsecuredToken('kgate-service') },
    });
    await assert.rejects(
      c.start(),
      /SASL mechanism OAUTHBEARER is not enabled on broker .* \(enabled: PLAIN/,
    );
  });
});
