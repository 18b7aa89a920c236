import { strict as assert } from 'node:assert';
import { after, describe, it } from 'node:test';
import { MessageTooLargeError } from '../../src/bindings/kafka/cache_client/index.ts';
import { closeFakeTopics, FakeCacheServer, FakeTopic, fakeStream } from '../support/fake-cache.ts';

after(closeFakeTopics);

const open = fakeStream;

describe('cache_client stream: produce', () => {
  it('produces through the exit with partition and acks', async () => {
    const t = new FakeTopic('produce');
    const server = new FakeCacheServer();
    const s = open(t, { capabilities: 'produce' }, server);
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        s.produce({ key: `k${i}`, value: `v${i}`, acks: 1, ...(i === 3 ? { partition: 0 } : {}) }),
      ),
    );
    assert.equal(results.length, 10);
    assert.equal(server.produced.length, 10);
    assert.equal(server.produced[3]?.partition, 0);
    assert.equal(server.produced[4]?.partition, undefined);
    // The topic's limit travels along, so the client never merges the record into a batch the broker refuses.
    assert.deepEqual(server.produced[0]?.options, { acks: 1, maxBatchBytes: 1024 });
    assert.deepEqual(server.produced[0]?.records, [{ key: 'k0', value: 'v0' }]);
    await assert.rejects(s.next(), /produce only/);
    s.close();
  });

  it('refuses to produce on a fetch stream', async () => {
    const t = new FakeTopic('fetchonly');
    const s = open(t);
    await assert.rejects(s.produce({ value: 'x' }), /fetch only/);
    assert.throws(() => s.produceStream(), /fetch only/);
    s.close();
  });

  it('stages a value in chunks and produces it once ended', async () => {
    const t = new FakeTopic('staged');
    const server = new FakeCacheServer();
    const s = open(t, { capabilities: 'produce_and_fetch' }, server);
    const staged = s.produceStream({ key: 'k', headers: { h: 'v' } });
    staged.write('hello ');
    staged.write(Buffer.from('world'));
    assert.equal(staged.size, 11);
    assert.equal(server.produced.length, 0);
    const ack = await staged.end('!');
    assert.equal(ack.partition, 0);
    const produced = server.produced[0]?.records[0];
    assert.deepEqual(produced?.value, Buffer.from('hello world!'));
    assert.equal(produced?.key, 'k');
    assert.deepEqual(produced?.headers, { h: 'v' });
    await assert.rejects(staged.end(), /is ended/);
    s.close();
  });

  it('fails the write that passes max.message.bytes, naming the limit', async () => {
    const t = new FakeTopic('toolarge');
    const server = new FakeCacheServer();
    const s = open(t, { capabilities: 'produce' }, server);
    const staged = s.produceStream({ key: 'k' });
    staged.write(Buffer.alloc(500));
    assert.throws(
      () => staged.write(Buffer.alloc(500)),
      (error: unknown) =>
        error instanceof MessageTooLargeError &&
        error.limit === 1024 &&
        /max\.message\.bytes \(1024\)/.test(error.message),
    );
    assert.throws(() => staged.write('more'), /is failed/);
    await assert.rejects(staged.end(), /is failed/);
    assert.equal(server.produced.length, 0);
    assert.throws(() => s.produceStream({ key: Buffer.alloc(2000) }), MessageTooLargeError);
    s.close();
  });
});
