// A cache_server process killed with SIGKILL over and over while its topic takes writes: after
// each restart it resumes where its last commit left it, and in the end every partition of the
// cache equals the broker's log.
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { CacheStore } from '../../src/bindings/kafka/cache/index.ts';
import { KafkaClient, type KafkaRecord, type ProduceRecord } from '../../src/bindings/kafka/client/index.ts';
import { startKafka, type KafkaCluster } from '../../src/embedded/kafka/index.ts';

// Each round costs a process start (about 1.5 s on two loaded cores); KGATE_KILL_ROUNDS lowers the
// count where that is too slow.
const ROUNDS = Number(process.env['KGATE_KILL_ROUNDS'] ?? 20);
const PARTITIONS = 4;
const CHILD = new URL('./fixtures/cache-server-child.ts', import.meta.url).pathname;

let kafka: KafkaCluster;
let client: KafkaClient;
let root: string;
const children = new Set<ChildProcess>();

before(async () => {
  kafka = await startKafka();
  client = new KafkaClient({ servers: [kafka.bootstrap] });
  await client.start(AbortSignal.timeout(30_000));
  root = await mkdtemp(join(tmpdir(), 'kgate-cache-kill-'));
});

after(async () => {
  for (const child of children) child.kill('SIGKILL');
  await client?.close();
  await kafka?.stop();
  if (root !== undefined) await rm(root, { recursive: true, force: true });
});

interface Child {
  readonly process: ChildProcess;
  /** Next offsets per partition as last reported; undefined until started. */
  offsets: bigint[] | undefined;
  readonly started: Promise<bigint[]>;
  readonly exited: Promise<number | null>;
}

function launch(topic: string, stateDir: string): Child {
  const proc = spawn(process.execPath, [CHILD, kafka.bootstrap, topic, String(PARTITIONS), stateDir], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.add(proc);
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => {
      children.delete(proc);
      resolve(code);
    }),
  );
  let resolveStarted: (offsets: bigint[]) => void = () => undefined;
  const started = new Promise<bigint[]>((resolve) => (resolveStarted = resolve));
  const child: Child = { process: proc, offsets: undefined, started, exited };
  const lines = createInterface({ input: proc.stdout ?? process.stdin });
  lines.on('line', (line) => {
    const message = JSON.parse(line) as { started?: string[]; offsets?: string[] };
    const reported = message.started ?? message.offsets;
    if (reported === undefined) return;
    child.offsets = reported.map(BigInt);
    if (message.started !== undefined) resolveStarted(child.offsets);
  });
  return child;
}

async function kill(child: Child): Promise<void> {
  child.process.kill('SIGKILL');
  await child.exited;
}

/**
 * Writes until stopped: mixed sizes, null and present keys, some headers. Paced so that the cache
 * keeps up between kills and the final comparison stays affordable.
 */
function producing(topic: string, signal: AbortSignal): { done: Promise<void>; produced: () => number } {
  let produced = 0;
  const done = (async () => {
    let n = 0;
    while (!signal.aborted) {
      await Promise.all(
        Array.from({ length: PARTITIONS }, async (_, partition) => {
          const records: ProduceRecord[] = Array.from({ length: 100 }, () => {
            const i = n++;
            return {
              key: i % 3 === 0 ? null : `key-${i % 1000}`,
              value: i % 17 === 0 ? null : randomBytes(10 + (i % 400)),
              headers: i % 5 === 0 ? [{ key: 'i', value: Buffer.from(String(i)) }] : [],
            };
          });
          await client.produce(topic, partition, records);
          produced += records.length;
        }),
      );
      await delay(50);
    }
  })();
  return { done, produced: () => produced };
}

async function brokerLog(topic: string, partition: number, end: bigint): Promise<KafkaRecord[]> {
  const records: KafkaRecord[] = [];
  if (end === 0n) return records;
  const controller = new AbortController();
  for await (const result of client.fetch(topic, partition, 0n, {
    signal: AbortSignal.any([controller.signal, AbortSignal.timeout(30_000)]),
    maxBytes: 4 * 1024 * 1024,
  })) {
    for (const batch of result.batches) records.push(...batch.records.filter((r) => r.offset < end));
    if (result.nextOffset >= end) break;
  }
  controller.abort();
  return records;
}

describe('cache_server killed with SIGKILL while ingesting', () => {
  it(`resumes after ${ROUNDS} kills with no gap, no duplicate and every byte equal`, async () => {
    const topic = `kill-${Date.now()}`;
    await kafka.createTopic(topic, { partitions: PARTITIONS });
    const stateDir = join(root, 'state');
    const stopProducing = new AbortController();
    const producer = producing(topic, stopProducing.signal);

    const t0 = Date.now();
    let last: bigint[] = Array.from({ length: PARTITIONS }, () => 0n);
    let killedWhileStarting = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const child = launch(topic, stateDir);
      // Every fourth kill lands during startup (store open, catalog, first fetches).
      if (round % 4 === 3) {
        await delay(Math.random() * 800);
        if (child.offsets === undefined) killedWhileStarting++;
        await kill(child);
        continue;
      }
      const resumed = await Promise.race([
        child.started,
        child.exited.then((code) => {
          throw new Error(`child exited with ${code} before starting, in round ${round}`);
        }),
      ]);
      // What the last killed process committed is what the next one resumes from: never less.
      for (let p = 0; p < PARTITIONS; p++)
        assert.ok(
          (resumed[p] ?? -1n) >= (last[p] ?? 0n),
          `round ${round} partition ${p}: resumed at ${resumed[p]}, had reported ${last[p]}`,
        );
      await delay(200 + Math.random() * 1_000);
      last = child.offsets ?? resumed;
      await kill(child);
    }
    stopProducing.abort();
    await producer.done;
    const killedAt = last;
    const killPhaseMs = Date.now() - t0;

    const ends = await Promise.all(
      Array.from({ length: PARTITIONS }, (_, p) => client.listOffsets(topic, p, 'latest')),
    );
    const final = launch(topic, stateDir);
    await final.started;
    const deadline = Date.now() + 30_000;
    while (!ends.every((end, p) => (final.offsets?.[p] ?? -1n) >= end)) {
      if (Date.now() > deadline) throw new Error(`final catch-up: ${final.offsets} of ${ends}`);
      await delay(100);
    }
    final.process.kill('SIGTERM');
    assert.equal(await final.exited, 0);

    const store = CacheStore.open(join(stateDir, 'cache'), { durability: 'none' });
    try {
      for (let p = 0; p < PARTITIONS; p++) {
        const end = ends[p] ?? 0n;
        const cached = store.partition(topic, p);
        assert.equal(cached.nextOffset, end, `partition ${p} next offset`);
        const broker = await brokerLog(topic, p, end);
        assert.equal(BigInt(broker.length), end, `partition ${p}: broker log has no holes`);
        let i = 0;
        for (let from = 0n; from < end;) {
          const { records, nextOffset } = cached.read(from, { maxRecords: 5_000, maxBytes: 8 * 1024 * 1024 });
          assert.ok(records.length > 0, `partition ${p}: nothing cached at ${from}`);
          for (const record of records) {
            const expected = broker[i++];
            assert.ok(expected !== undefined, `partition ${p}: cache has more than the broker`);
            assert.equal(record.offset, expected.offset, `partition ${p}: gap or duplicate`);
            assert.equal(record.timestamp, expected.timestamp);
            assert.deepEqual(record.key, expected.key, `partition ${p} offset ${record.offset} key`);
            assert.deepEqual(record.value, expected.value, `partition ${p} offset ${record.offset} value`);
            assert.deepEqual(
              record.headers.map((h) => [h.name.toString(), h.value]),
              expected.headers.map((h) => [h.key, h.value]),
            );
          }
          from = nextOffset;
        }
        assert.equal(i, broker.length, `partition ${p}: cache has fewer records than the broker`);
        assert.equal(cached.stats().records, broker.length);
      }
    } finally {
      await store.close();
    }
    const total = ends.reduce((a, b) => a + b, 0n);
    assert.equal(total, BigInt(producer.produced()));
    // The kills must have hit a cache that was taking writes, or this proved nothing.
    assert.ok(
      killedAt.reduce((a, b) => a + b, 0n) > 0n,
      `nothing was cached before the last kill (${killedAt})`,
    );
    process.stderr.write(
      `# ${ROUNDS} kills (${killedWhileStarting} during startup), ${total} records, cached at last kill ${killedAt}, kill phase ${killPhaseMs} ms\n`,
    );
  });
});
