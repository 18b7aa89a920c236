import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { Writable } from 'node:stream';
import { KafkaWaits } from '../../src/bindings/kafka/cache_server/waits.ts';
import { KafkaWaitError, type KafkaReachability } from '../../src/bindings/kafka/client/index.ts';
import { errorCodeOf, httpStatusOf } from '../../src/engine/errors.ts';

const DOWN = 'Kafka not reachable at b:9092: connection to b:9092 failed: connect ECONNREFUSED';

function waits(reach: () => KafkaReachability | undefined): {
  waits: KafkaWaits;
  metrics: Registry;
  lines: { level: number; msg: string }[];
} {
  const lines: { level: number; msg: string }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n'))
        if (line !== '') lines.push(JSON.parse(line) as { level: number; msg: string });
      callback();
    },
  });
  const metrics = new Registry();
  return {
    waits: new KafkaWaits({
      binding: 'cache',
      log: pino({ level: 'info' }, sink),
      metrics,
      reachability: reach,
    }),
    metrics,
    lines,
  };
}

async function expiredCount(metrics: Registry, waitingFor: string): Promise<number> {
  const metric = await metrics.getSingleMetric('kgate_cache_kafka_waits_expired_total')?.get();
  return metric?.values.find((v) => v.labels['waiting_for'] === waitingFor)?.value ?? 0;
}

const never = new Promise<never>(() => undefined);

describe('KafkaWaits', () => {
  it('passes what came in time through, and bounds nothing without a timeout or signal', async () => {
    const { waits: w } = waits(() => undefined);
    assert.equal(await w.within(Promise.resolve(3), 't', 'metadata', { timeoutMs: 1_000 }), 3);
    const unbounded = w.within(Promise.resolve('x'), 't', 'metadata', {});
    assert.equal(await unbounded, 'x');
  });

  it('ends a wait at its timeout with why: no broker reachable, or one that answers without it', async () => {
    let reach: KafkaReachability = { reached: true, unreachable: DOWN };
    const { waits: w, metrics, lines } = waits(() => reach);
    const started = Date.now();
    await assert.rejects(w.within(never, 'items', 'metadata', { timeoutMs: 50 }), (error: unknown) => {
      assert.ok(error instanceof KafkaWaitError);
      assert.equal(errorCodeOf(error), 'KGATE_KAFKA_UNAVAILABLE');
      assert.equal(httpStatusOf(error), 503);
      assert.equal(error.message, `no metadata for items within 0.05 s: ${DOWN}`);
      return true;
    });
    assert.ok(Date.now() - started < 1_000);
    reach = { reached: true, unreachable: undefined };
    await assert.rejects(w.within(never, 'items', 'config', { timeoutMs: 20 }), (error: unknown) => {
      assert.equal(errorCodeOf(error), 'KGATE_KAFKA_TIMEOUT');
      assert.equal(httpStatusOf(error), 503);
      assert.match(String(error), /no config for items within 0.02 s: Kafka answers, but not with that yet/);
      return true;
    });
    assert.equal(await expiredCount(metrics, 'metadata'), 1);
    assert.equal(await expiredCount(metrics, 'config'), 1);
    // One warning for the run of waits that ran out, one line when one is served again.
    assert.deepEqual(
      lines.map((l) => l.msg),
      ['requests ran out of time waiting for Kafka'],
    );
    await w.within(Promise.resolve(1), 'items', 'metadata', { timeoutMs: 1_000 });
    await w.within(Promise.resolve(1), 'items', 'metadata', { timeoutMs: 1_000 });
    assert.deepEqual(
      lines.map((l) => l.msg),
      ['requests ran out of time waiting for Kafka', 'requests are served from Kafka again'],
    );
  });

  it("ends a wait whose caller left with the signal's reason, counting nothing", async () => {
    const { waits: w, metrics } = waits(() => ({ reached: true, unreachable: DOWN }));
    const gone = new AbortController();
    const reason = new Error('the client closed the connection');
    const waiting = w.within(never, 'items', 'metadata', { signal: gone.signal, timeoutMs: 60_000 });
    gone.abort(reason);
    await assert.rejects(waiting, (error: unknown) => error === reason);
    assert.equal(await expiredCount(metrics, 'metadata'), 0);
  });

  it('refuses at once while no broker has answered since start and the last attempt failed', async () => {
    let reach: KafkaReachability | undefined = { reached: false, unreachable: undefined };
    const { waits: w, metrics } = waits(() => reach);
    w.checkReached('items'); // not tried yet: a request waits for the first attempt
    reach = { reached: false, unreachable: DOWN };
    assert.throws(
      () => w.checkReached('items'),
      (error: unknown) => {
        assert.equal(errorCodeOf(error), 'KGATE_KAFKA_UNAVAILABLE');
        assert.equal(String((error as Error).message), `Kafka has not answered since kgate started: ${DOWN}`);
        return true;
      },
    );
    assert.equal(await expiredCount(metrics, 'not_reached'), 1);
    // Once reached, an outage is waited out within each request's deadline instead.
    reach = { reached: true, unreachable: DOWN };
    w.checkReached('items');
    reach = undefined;
    w.checkReached('items');
  });
});
