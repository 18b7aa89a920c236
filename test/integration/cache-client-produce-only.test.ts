import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import type { Counter } from 'prom-client';
import { chainAvailable, startChain, str, take, type Chain } from './cache-client-harness.ts';

// A stream opened to produce only must not make the cache_server follow the topic: following
// means fetching and storing records nobody reads, on the connection the produce requests use.

let chain: Chain;

before(async () => {
  if (chainAvailable) chain = await startChain('cc-produce-only');
});

after(async () => {
  if (chainAvailable) await chain?.stop();
});

async function fetchRequests(): Promise<number> {
  const metric = chain.engine.metrics.getSingleMetric('kgate_kafka_client_requests_total') as
    Counter | undefined;
  assert.ok(metric !== undefined, 'the client counts its requests');
  const { values } = await metric.get();
  return values.filter((v) => v.labels['api'] === 'Fetch').reduce((sum, v) => sum + v.value, 0);
}

describe('cache_client produce-only streams', { skip: !chainAvailable }, () => {
  it('produce without the topic being fetched, and a later reader still gets every message', async () => {
    const t = await chain.topic(4);
    const before = await fetchRequests();
    for (let i = 0; i < 20; i++) {
      const stream = await chain.client.open(t, { capabilities: 'produce' });
      try {
        if (i % 2 === 0) await stream.produce({ key: `k${i}`, value: `v${i}` });
        else await stream.produceStream({ key: `k${i}` }).end(`v${i}`);
      } finally {
        stream.close();
      }
    }
    assert.equal(await fetchRequests(), before, 'no Fetch request for a topic that is only produced to');

    const reader = await chain.client.open(t, { defaultOffset: 'historical' });
    try {
      const messages = await take(reader, 20);
      const values = messages.map((m) => str(m.value)).sort();
      assert.deepEqual(values, Array.from({ length: 20 }, (_, i) => `v${i}`).sort());
    } finally {
      reader.close();
    }
    assert.ok((await fetchRequests()) > before, 'the reader made the cache fetch the topic');
  });

  it('bounds a staged message by the topic max.message.bytes without attaching', async () => {
    const t = await chain.topic(1, { 'max.message.bytes': '2048' });
    const stream = await chain.client.open(t, { capabilities: 'produce' });
    try {
      const staged = stream.produceStream({ key: 'big' });
      assert.throws(() => staged.write(Buffer.alloc(4096)), /max\.message\.bytes \(2048\)/);
    } finally {
      stream.close();
    }
  });

  it('rejects a produce-only open of a topic that does not exist', async () => {
    await assert.rejects(
      chain.client.open(`cc-produce-only-missing-${Date.now()}`, { capabilities: 'produce' }),
      /does not exist/,
    );
  });
});
