import { strict as assert } from 'node:assert';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { AuthenticationError, ConnectionError } from '../../src/bindings/kafka/client/index.ts';
import { Reach } from '../../src/bindings/kafka/client/reach.ts';
import { until } from '../support/until.ts';

/** A cluster that refuses the first `failures` attempts with the errors given, then answers. */
function cluster(failures: readonly Error[]): {
  connect(): Promise<void>;
  attempts: number;
  bootstrapServers: string;
} {
  const target = {
    attempts: 0,
    bootstrapServers: 'b:9092',
    connect(): Promise<void> {
      const failure = failures[target.attempts++];
      return failure === undefined ? Promise.resolve() : Promise.reject(failure);
    },
  };
  return target;
}

function logLines(): { logger: pino.Logger; messages: string[] } {
  const messages: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n'))
        if (line !== '') messages.push((JSON.parse(line) as { msg: string }).msg);
      callback();
    },
  });
  return { logger: pino({ level: 'info' }, sink), messages };
}

const refused = new ConnectionError('connection to b:9092 failed: connect ECONNREFUSED');

describe('Reach', () => {
  it('keeps trying with backoff until a broker answers, and says so once each way', async () => {
    const target = cluster([refused, refused, refused]);
    const { logger, messages } = logLines();
    const stopping = new AbortController();
    const reach = new Reach(target, logger, stopping.signal);
    assert.equal(reach.reached, false);
    await reach.until(AbortSignal.timeout(10_000));
    assert.equal(reach.reached, true);
    assert.equal(target.attempts, 4);
    await until('the lines are written', () => messages.length === 2);
    assert.deepEqual(messages, ['Kafka not reachable yet, retrying', 'Kafka reachable']);
    stopping.abort();
  });

  it('tells a waiter whose deadline passes why, and goes on trying', async () => {
    const target = cluster(Array.from({ length: 1_000 }, () => refused));
    const stopping = new AbortController();
    const reach = new Reach(target, undefined, stopping.signal);
    await assert.rejects(reach.until(AbortSignal.timeout(300)), {
      name: 'ConnectionError',
      message: 'Kafka not reachable at b:9092: connection to b:9092 failed: connect ECONNREFUSED',
    });
    const tried = target.attempts;
    await until('another attempt', () => target.attempts > tried, 5_000);
    stopping.abort();
    await assert.rejects(reach.until(new AbortController().signal), /Kafka not reachable/);
  });

  it('fails a waiter at once while the broker refuses kgate, and still tries again later', async () => {
    const denied = new AuthenticationError('SASL authentication failed for user alice with PLAIN');
    const target = cluster([denied]);
    const { logger, messages } = logLines();
    const stopping = new AbortController();
    const reach = new Reach(target, logger, stopping.signal);
    await until('the first attempt', () => target.attempts === 1);
    await assert.rejects(reach.until(AbortSignal.timeout(10_000)), (error: unknown) => error === denied);
    await until('the retry', () => reach.reached, 5_000);
    await until('the lines are written', () => messages.length === 2);
    assert.deepEqual(messages, ['Kafka refuses kgate; retrying until that changes', 'Kafka reachable']);
    stopping.abort();
  });
});
