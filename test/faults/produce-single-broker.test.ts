import { strict as assert } from 'node:assert';
import { after, before, describe, it, type TestContext } from 'node:test';
import { KafkaClient } from '../../src/bindings/kafka/client/index.ts';
import { startKafka, type KafkaCluster } from '../../src/embedded/kafka/index.ts';
import {
  capturingLogger,
  clientProduceLoad,
  connectionLines,
  count,
  firstWrittenAfter,
  paced,
  readTopic,
  type LogLine,
  type Sent,
  slowest,
  startProduceGateway,
} from '../support/produce-faults.ts';
import { until } from '../support/until.ts';

// One broker goes away for some seconds (a clean stop, then kill -9) while produce calls are in
// flight, through the Kafka client directly and through the http-kafka PUT and POST path: every
// call must be answered written, none lost, duplicated or reordered, and no
// OUT_OF_ORDER_SEQUENCE_NUMBER may reach a caller. The logs must say once that the broker was
// lost and once that it came back. Figures in docs/reliability.md, section 1.

const PARTITIONS = 4;
const RATE = 200;
/** How long the broker stays away under the Kafka client's load, and under the PUTs and POSTs. */
const CLIENT_OUTAGE_MS = 3_000;
const HTTP_OUTAGE_MS = 10_000;

let kafka: KafkaCluster;

before(async () => {
  kafka = await startKafka();
});

after(async () => {
  await kafka?.stop();
});

/**
 * Runs `outage` under a running load, waits for a second of writes after it, stops the load and
 * checks every answer against the topic: all written, none lost, duplicated or reordered (nor at
 * another offset than acknowledged, where offsets are known), and one lost / restored log line pair.
 */
async function checkThroughOutage(
  t: TestContext,
  run: {
    readonly topic: string;
    readonly sent: readonly Sent[];
    readonly lines: readonly LogLine[];
    readonly load: Promise<void>;
    readonly stop: AbortController;
    readonly offsetsKnown: boolean;
    readonly costs: string;
  },
  outage: () => Promise<void>,
): Promise<void> {
  const { sent } = run;
  const downAt = Date.now();
  await outage();
  const upAt = Date.now();
  await until('writes after the restart', () => firstWrittenAfter(sent, upAt) !== undefined, 90_000);
  await until(
    'a second of writes after it',
    () => Date.now() - upAt > 1_000 + (firstWrittenAfter(sent, upAt) ?? 0),
    10_000,
  );
  run.stop.abort();
  await run.load;
  const logs = await readTopic(kafka.bootstrap, run.topic, PARTITIONS);
  const counts = count(sent, logs, run.offsetsKnown);
  const outOfOrder = sent.filter((s) => s.error?.includes('OUT_OF_ORDER') === true).length;
  const connection = connectionLines(run.lines, kafka.brokerBootstrap(1));
  t.diagnostic(
    JSON.stringify({
      ...counts,
      outOfOrder,
      outageMs: upAt - downAt,
      recoveryMs: firstWrittenAfter(sent, upAt),
      slowestMs: slowest(sent),
      logged: connection.map(
        (l) => `${l.msg}${l.downMs === undefined ? '' : ` after ${String(l.downMs)} ms`}`,
      ),
    }),
  );
  assert.deepEqual(
    sent.filter((s) => s.outcome !== 'written').map((s) => s.error),
    [],
    `an outage shorter than the deadline costs no ${run.costs}`,
  );
  assert.equal(outOfOrder, 0);
  assert.deepEqual(
    { lost: counts.lost, duplicated: counts.duplicated, reordered: counts.reordered },
    { lost: 0, duplicated: 0, reordered: 0 },
  );
  if (run.offsetsKnown) assert.equal(counts.wrongOffset, 0, 'each call written at the offset it was told');
  assert.deepEqual(
    connection.map((l) => [l.level, l.msg]),
    [
      [40, 'broker connection lost'],
      [30, 'broker connection restored'],
    ],
  );
  assert.ok(typeof connection[1]?.downMs === 'number' && connection[1].downMs > 0);
}

/** Runs `outage` while a client produces at RATE, and checks every answer against the topic. */
async function clientThroughOutage(
  t: TestContext,
  topic: string,
  outage: () => Promise<void>,
): Promise<void> {
  await kafka.createTopic(topic, { partitions: PARTITIONS });
  const { log, lines } = capturingLogger();
  const client = new KafkaClient({
    servers: [kafka.bootstrap],
    logger: log,
    retryInitialMs: 50,
    retryMaxMs: 1_000,
  });
  await client.start(AbortSignal.timeout(30_000));
  const stop = new AbortController();
  const { sent, load } = clientProduceLoad(client, topic, PARTITIONS, RATE, stop.signal);
  try {
    await until(
      'produce under way',
      () => sent.filter((s) => s.outcome === 'written').length >= RATE / 2,
      30_000,
    );
    await checkThroughOutage(
      t,
      { topic, sent, lines, load, stop, offsetsKnown: true, costs: 'call' },
      outage,
    );
  } finally {
    stop.abort();
    await load.catch(() => undefined);
    await client.close();
  }
}

describe('produce through a single broker outage', () => {
  it('loses, duplicates and reorders nothing when the broker stops cleanly for seconds', async (t) => {
    await clientThroughOutage(t, 'outage-clean', async () => {
      await kafka.stopBroker(1);
      await new Promise((resolve) => setTimeout(resolve, CLIENT_OUTAGE_MS));
      await kafka.startBroker(1);
    });
  });

  it('loses, duplicates and reorders nothing when the broker is killed (kill -9) mid-request', async (t) => {
    await clientThroughOutage(t, 'outage-killed', async () => {
      await kafka.killBroker(1);
      await new Promise((resolve) => setTimeout(resolve, CLIENT_OUTAGE_MS));
      await kafka.startBroker(1);
    });
  });

  it('answers every PUT and POST in flight through a 10 s outage (kill -9) 204, each written once', async (t) => {
    const topic = 'outage-http';
    await kafka.createTopic(topic, { partitions: PARTITIONS });
    const gateway = await startProduceGateway(kafka.bootstrap, topic);
    const { sent, lines } = gateway;
    const stop = new AbortController();
    const load = paced(30_000, RATE / 2, gateway.send, stop.signal);
    try {
      await until(
        'produce under way',
        () => sent.filter((s) => s.outcome === 'written').length >= RATE / 4,
        30_000,
      );
      await checkThroughOutage(
        t,
        { topic, sent, lines, load, stop, offsetsKnown: false, costs: 'request' },
        async () => {
          await kafka.killBroker(1);
          await new Promise((resolve) => setTimeout(resolve, HTTP_OUTAGE_MS));
          await kafka.startBroker(1);
        },
      );
    } finally {
      stop.abort();
      await load.catch(() => undefined);
      await gateway.stop();
    }
  });
});
