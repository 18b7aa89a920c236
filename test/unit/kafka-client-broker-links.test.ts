import { strict as assert } from 'node:assert';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { BrokerLinks } from '../../src/bindings/kafka/client/broker-links.ts';
import { ConnectionError } from '../../src/bindings/kafka/client/errors.ts';
import { createClientMetrics } from '../../src/bindings/kafka/client/metrics.ts';

interface Line {
  readonly level: number;
  readonly msg: string;
  readonly broker?: string;
  readonly nodeId?: number;
  readonly downMs?: number;
}

function links(): { links: BrokerLinks; lines: Line[]; registry: Registry; reconnects: string[] } {
  const lines: Line[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const text of chunk.toString().split('\n')) if (text !== '') lines.push(JSON.parse(text) as Line);
      done();
    },
  });
  const registry = new Registry();
  const reconnects: string[] = [];
  const l = new BrokerLinks({
    log: pino({ level: 'debug' }, stream),
    metrics: createClientMetrics(registry, 'south'),
    backoff: { initialMs: 5, maxMs: 10 },
    reconnect: (address) => reconnects.push(address),
    nodeIdOf: () => 2,
  });
  return { links: l, lines, registry, reconnects };
}

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const error = new ConnectionError('connection to 127.0.0.1:9092 failed: connect ECONNREFUSED');

describe('broker connection state in logs and metrics', () => {
  it('says once that a broker was lost and once that it is back, with how long it was down', async () => {
    const { links: l, lines, registry, reconnects } = links();
    l.opened('127.0.0.1:9092');
    l.closed('127.0.0.1:9092', error, 3);
    for (let i = 0; i < 20; i++) l.failed('127.0.0.1:9092', error);
    await new Promise((resolve) => setTimeout(resolve, 30));
    l.opened('127.0.0.1:9092');
    l.close();
    await flush();
    const above = lines.filter((line) => line.level >= 30);
    assert.deepEqual(
      above.map((line) => [line.level, line.msg, line.broker, line.nodeId]),
      [
        [40, 'broker connection lost', '127.0.0.1:9092', 2],
        [30, 'broker connection restored', '127.0.0.1:9092', 2],
      ],
    );
    assert.ok((above[1]?.downMs ?? 0) >= 25, `down ${above[1]?.downMs} ms`);
    assert.ok(reconnects.length >= 1, 'a lost broker is probed until it answers');
    const metrics = await registry.metrics();
    assert.match(metrics, /kgate_kafka_client_broker_up\{binding="south",broker="127.0.0.1:9092"\} 1/);
    assert.match(
      metrics,
      /kgate_kafka_client_broker_outages_total\{binding="south",broker="127.0.0.1:9092"\} 1/,
    );
  });

  it('takes an idle connection a broker closed for no outage, until reopening it fails', async () => {
    const { links: l, lines } = links();
    l.opened('127.0.0.1:9092');
    l.closed('127.0.0.1:9092', new ConnectionError('connection to 127.0.0.1:9092 closed'), 0);
    await flush();
    assert.deepEqual(
      lines.filter((line) => line.level >= 30),
      [],
    );
    l.failed('127.0.0.1:9092', error);
    l.close();
    await flush();
    assert.deepEqual(
      lines.filter((line) => line.level >= 30).map((line) => line.msg),
      ['broker connection lost'],
    );
  });

  it('says nothing of brokers never connected to', async () => {
    const { links: l, lines } = links();
    l.failed('127.0.0.1:9093', error);
    l.close();
    await flush();
    assert.deepEqual(lines, []);
  });
});
