import { strict as assert } from 'node:assert';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import type { FetchResponse } from '../../src/bindings/kafka/client/apis/fetch.ts';
import { Api, type ApiSpec } from '../../src/bindings/kafka/client/apis/index.ts';
import type {
  ProducePartitionResponse,
  ProduceRequest,
} from '../../src/bindings/kafka/client/apis/produce.ts';
import type { BrokerConnection } from '../../src/bindings/kafka/client/connection.ts';
import { BrokerFetcher, type FetchSettings } from '../../src/bindings/kafka/client/fetcher.ts';
import { createClientMetrics } from '../../src/bindings/kafka/client/metrics.ts';
import { ProduceRouter } from '../../src/bindings/kafka/client/produce-router.ts';
import { ZERO_UUID } from '../../src/bindings/kafka/client/protocol/reader.ts';

// Captured before the clock is mocked: lets the promise chains under test run between ticks.
const realImmediate = setImmediate;
const flush = (): Promise<void> => new Promise((resolve) => realImmediate(resolve));

const TOPIC = 'idle-topic';

interface Sent {
  readonly api: string;
  readonly at: number;
  /** For a Fetch: how long the broker may hold it. */
  readonly waitMs: number;
}

/**
 * Stands in for a broker connection with a broker's ordering: one request is worked on at a time,
 * in the order written. A Fetch on an idle partition is held for its whole wait; a Produce takes 1 ms.
 */
class SerialBroker {
  readonly address = 'fake:9092';
  readonly sent: Sent[] = [];
  readonly #queue: { spec: ApiSpec; waitMs: number; resolve: (value: unknown) => void }[] = [];
  #working = false;
  // What BrokerConnection reports of the requests other than Fetch.
  othersPending = 0;
  othersActiveAt = 0;

  version(): number {
    return 12;
  }

  fail(): void {
    throw new Error('the fake broker connection never fails');
  }

  request<T>(spec: ApiSpec, _request: unknown, options?: { extraTimeoutMs?: number }): Promise<T> {
    return new Promise<T>((resolve) => {
      const waitMs = spec === Api.Fetch ? (options?.extraTimeoutMs ?? 0) : 0;
      this.sent.push({ api: spec.name, at: Date.now(), waitMs });
      if (spec !== Api.Fetch) {
        this.othersPending++;
        this.othersActiveAt = Date.now();
      }
      this.#queue.push({ spec, waitMs, resolve: resolve as (value: unknown) => void });
      this.#next();
    });
  }

  #next(): void {
    if (this.#working) return;
    const request = this.#queue.shift();
    if (request === undefined) return;
    this.#working = true;
    const fetch = request.spec === Api.Fetch;
    setTimeout(
      () => {
        this.#working = false;
        if (!fetch) {
          this.othersPending--;
          this.othersActiveAt = Date.now();
        }
        request.resolve(fetch ? emptyFetch() : produced());
        this.#next();
      },
      fetch ? request.waitMs : 1,
    );
  }

  fetches(): Sent[] {
    return this.sent.filter((s) => s.api === Api.Fetch.name);
  }
}

function emptyFetch(): FetchResponse {
  return {
    errorCode: 0,
    partitions: [
      {
        topic: TOPIC,
        partition: 0,
        errorCode: 0,
        highWatermark: 0n,
        lastStableOffset: 0n,
        logStartOffset: 0n,
        abortedTransactions: [],
        records: null,
        leaderId: 1,
      },
    ],
  };
}

function produced(): ProducePartitionResponse[] {
  return [
    {
      topic: TOPIC,
      partition: 1,
      errorCode: 0,
      baseOffset: 0n,
      logAppendTimeMs: -1n,
      logStartOffset: 0n,
      errorMessage: null,
      recordErrors: [],
    },
  ];
}

const SETTINGS: FetchSettings = {
  maxWaitMs: 1_000,
  producingWaitMs: 50,
  activeWindowMs: 200,
  busyIntervalMs: 5,
  minBytes: 1,
  maxBytes: 1024 * 1024,
};

interface Setup {
  readonly broker: SerialBroker;
  readonly fetcher: BrokerFetcher;
  /** Produces one record; resolves with when the broker's answer came back. */
  produce(): Promise<number>;
  /** Keeps one consumer asking for the idle partition, as the client's fetch loop does. */
  consume(signal: AbortSignal): Promise<void>;
}

/** A ProduceRouter whose one broker (node 1) is `connection`, leading every partition. */
function fakeRouter(connection: BrokerConnection): ProduceRouter {
  return new ProduceRouter({
    options: { servers: ['fake:9092'] },
    connect: () => Promise.resolve(connection),
    leader: () => Promise.resolve(1),
    refresh: () => Promise.resolve(),
    initProducerId: () => Promise.resolve({ producerId: 1n, epoch: 0 }),
    metrics: createClientMetrics(undefined, 'test').produce,
    log: undefined,
    closing: new AbortController().signal,
  });
}

function setup(): Setup {
  const broker = new SerialBroker();
  const connection = broker as unknown as BrokerConnection;
  const router = fakeRouter(connection);
  const fetcher = new BrokerFetcher(
    () => Promise.resolve(connection),
    0,
    SETTINGS,
    () => router.activity(1),
  );
  const produce = (): Promise<number> =>
    router.produce(TOPIC, 1, [{ value: Buffer.from('v') }], { acks: -1 }).then(() => Date.now());
  const consume = async (signal: AbortSignal): Promise<void> => {
    while (!signal.aborted) await fetcher.next(TOPIC, ZERO_UUID, 0, 0n, 1024, signal);
  };
  return { broker, fetcher, produce, consume };
}

/** Moves the mocked clock on by `ms`, a millisecond at a time, letting promises settle between. */
async function advance(ms: number): Promise<void> {
  for (let i = 0; i < ms; i++) {
    mock.timers.tick(1);
    for (let j = 0; j < 4; j++) await flush();
  }
}

describe('fetch and produce sharing one broker connection', { timeout: 30_000 }, () => {
  beforeEach(() => {
    mock.timers.enable({ apis: ['setTimeout', 'setImmediate', 'Date'], now: 1_000_000 });
  });
  afterEach(() => {
    mock.timers.reset();
  });

  it('gives a broker never produced to the full long poll', async () => {
    const { broker, consume } = setup();
    const stop = new AbortController();
    const consuming = consume(stop.signal);
    await advance(2_500);
    stop.abort();
    await advance(1_000);
    await consuming;
    const fetches = broker.fetches();
    assert.ok(fetches.length >= 2 && fetches.length <= 3, `${fetches.length} fetches in 2.5 s`);
    for (const f of fetches) assert.equal(f.waitMs, SETTINGS.maxWaitMs);
  });

  it('sends a produce made during an idle long poll once the shorter producing wait ends', async () => {
    const { broker, produce, consume } = setup();
    const stop = new AbortController();
    const consuming = consume(stop.signal);
    // An earlier produce makes this a producing connection; then it goes quiet past the window.
    const first = produce();
    await advance(SETTINGS.maxWaitMs + 10);
    await first;
    const polling = broker.fetches().at(-1);
    assert.ok(polling !== undefined);
    assert.equal(polling.waitMs, SETTINGS.producingWaitMs, 'a quiet producing connection polls shorter');
    // Somewhere inside that poll a produce arrives.
    const madeAt = Date.now();
    const acked = produce();
    // Far enough for the full long poll too, so a produce stuck behind one fails the assertion below.
    await advance(SETTINGS.maxWaitMs + 10);
    const ackedAt = await acked;
    assert.ok(
      ackedAt - madeAt <= SETTINGS.producingWaitMs + 2,
      `produce acknowledged after ${ackedAt - madeAt} ms behind a ${polling.waitMs} ms poll`,
    );
    // With produce active, the next fetch does not wait at the broker.
    const after = broker.fetches().filter((f) => f.at >= madeAt);
    assert.ok(after.length > 0);
    assert.ok(after.some((f) => f.waitMs === 0));
    stop.abort();
    await advance(SETTINGS.maxWaitMs);
    await consuming;
  });

  it('keeps fetches from waiting while produce is active, paced instead of polled in a loop', async () => {
    const { broker, produce, consume } = setup();
    const stop = new AbortController();
    const consuming = consume(stop.signal);
    // Produce is active from here on: the closed loop below starts as soon as this is answered.
    const first = produce();
    await advance(5);
    await first;
    const start = Date.now();
    const latencies: number[] = [];
    // A closed-loop producer for 200 ms.
    const producing = (async () => {
      while (Date.now() - start < 200) {
        const madeAt = Date.now();
        latencies.push((await produce()) - madeAt);
      }
    })();
    await advance(200 + SETTINGS.maxWaitMs + 10);
    await producing;
    const during = broker.fetches().filter((f) => f.at >= start && f.at < start + 200);
    assert.ok(latencies.length > 20, `${latencies.length} produces in 200 ms`);
    assert.ok(Math.max(...latencies) <= 3, `slowest produce ${Math.max(...latencies)} ms`);
    for (const f of during) assert.equal(f.waitMs, 0);
    assert.ok(
      during.length <= 200 / SETTINGS.busyIntervalMs + 1,
      `${during.length} fetches in 200 ms, paced at ${SETTINGS.busyIntervalMs} ms`,
    );
    assert.ok(during.length >= 200 / SETTINGS.busyIntervalMs / 2, `${during.length} fetches in 200 ms`);
    stop.abort();
    await advance(SETTINGS.maxWaitMs);
    await consuming;
  });

  it('answers a chain of other requests behind at most the one fetch already held', async () => {
    const { broker, consume } = setup();
    const stop = new AbortController();
    const consuming = consume(stop.signal);
    await advance(SETTINGS.maxWaitMs + 10);
    // Just after a long poll began: Metadata, then InitProducerId once Metadata is answered, the
    // way a first produce to a new topic sends them.
    const polling = broker.fetches().at(-1);
    assert.ok(polling !== undefined && polling.waitMs === SETTINGS.maxWaitMs);
    const startedAt = Date.now();
    const chain = (async () => {
      const connection = broker as unknown as BrokerConnection;
      await connection.request(Api.Metadata, []);
      await connection.request(Api.InitProducerId, undefined);
      return Date.now();
    })();
    await advance(3 * SETTINGS.maxWaitMs);
    const took = (await chain) - startedAt;
    assert.ok(
      took <= SETTINGS.maxWaitMs + SETTINGS.busyIntervalMs + 5,
      `the two requests took ${took} ms behind ${SETTINGS.maxWaitMs} ms polls`,
    );
    // Once they are over and the window has passed, the fetches wait at the broker again.
    assert.equal(broker.fetches().at(-1)?.waitMs, SETTINGS.maxWaitMs);
    stop.abort();
    await advance(SETTINGS.maxWaitMs);
    await consuming;
  });
});

describe('produce calls merged into one record batch', () => {
  /** Answers every Produce at once and keeps the size of each record batch it carried. */
  function recordingProducer(): { producer: ProduceRouter; batches: number[] } {
    const batches: number[] = [];
    const connection = {
      address: 'fake:9092',
      request: (_spec: ApiSpec, request: ProduceRequest) => {
        const answers: ProducePartitionResponse[] = [];
        for (const topic of request.topics)
          for (const { partition, batch } of topic.partitions) {
            batches.push(batch.length);
            answers.push({ ...(produced()[0] as ProducePartitionResponse), topic: topic.topic, partition });
          }
        return Promise.resolve(answers);
      },
    };
    const producer = fakeRouter(connection as unknown as BrokerConnection);
    return { producer, batches };
  }

  /** Queues one call of one record, all before the producer's first round. */
  function send(
    producer: ProduceRouter,
    valueBytes: number,
    maxBatchBytes?: number,
    signal?: AbortSignal,
  ): Promise<unknown> {
    return producer.produce(TOPIC, 1, [{ key: 'k', value: Buffer.alloc(valueBytes) }], {
      acks: -1,
      ...(maxBatchBytes === undefined ? {} : { maxBatchBytes }),
      ...(signal === undefined ? {} : { signal }),
    });
  }

  it("keeps each batch within every merged call's max.message.bytes", async () => {
    const { producer, batches } = recordingProducer();
    await Promise.all(Array.from({ length: 4 }, () => send(producer, 6_000, 10_000)));
    assert.equal(batches.length, 4, 'no two 6,000-byte values share a batch under a 10,000-byte limit');
    assert.ok(
      batches.every((size) => size <= 10_000),
      `${batches.join(', ')}`,
    );
  });

  it('drops a call given up before its round, with its reason, and sends the others', async () => {
    const { producer, batches } = recordingProducer();
    const gone = new AbortController();
    const left = send(producer, 100, undefined, gone.signal);
    const stays = send(producer, 100);
    gone.abort(new Error('the client closed the connection'));
    await assert.rejects(left, /the client closed the connection/);
    await stays;
    assert.equal(batches.length, 1, 'one batch, for the call still wanted');
  });

  it('still merges small calls, and calls whose topic limit is not known', async () => {
    const { producer, batches } = recordingProducer();
    await Promise.all([
      ...Array.from({ length: 20 }, () => send(producer, 100, 10_000)),
      ...Array.from({ length: 20 }, () => send(producer, 6_000)),
    ]);
    assert.ok(batches.length <= 2, `${batches.length} batches`);
  });
});
