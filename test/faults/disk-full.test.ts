// Point 6 of docs/reliability.md: a full disk pauses ingest, and ingest resumes as soon as a commit
// fits again, whatever the size of the volume. Real ingest from a real broker, two ways:
// - on a real 20 MiB tmpfs shared with another file: the cache fills what is left until ingest
//   pauses, the other file is deleted (6 MiB freed), and ingest resumes within seconds. Mounting
//   needs root (CAP_SYS_ADMIN); elsewhere this case is skipped;
// - on any machine, with a volume the store layer simulates: a commit or a probe that would take
//   the store's records past `room` bytes fails with the ENOSPC error LMDB raises on a full disk,
//   and "freeing" 6 MiB raises `room`. What LMDB itself does on a full filesystem (EIO on tmpfs,
//   pages it grows by) only the tmpfs case sees.
// Either way every record the broker holds (read by kcat) is cached exactly once, with one log
// line for the pause (free and wanted bytes) and one for the resume.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { statfsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { CacheStore } from '../../src/bindings/kafka/cache/index.ts';
import { CacheServerBinding } from '../../src/bindings/kafka/cache_server/index.ts';
import { KafkaClient } from '../../src/bindings/kafka/client/index.ts';
import { startKafka, type KafkaCluster } from '../../src/embedded/kafka/index.ts';
import { kafkaExit } from '../support/kafka-exit.ts';
import { compareRecords, kcatPartition } from '../support/kcat-topic.ts';
import { until } from '../support/until.ts';

const VOLUME = '20m';
const OTHER_FILE_BYTES = 6 * 1024 * 1024;
const PARTITIONS = 2;
const VALUE_BYTES = 8 * 1024;
// 2 x 750 x 8 KiB = 11.7 MiB of values: more than the 14 MiB left on the volume holds once LMDB's
// pages are counted (about 1.5 times the values here), and little enough that what is left after
// the pause fits the 6 MiB freed.
const RECORDS = 750;
/**
 * The simulated volume's room for records before the test frees OTHER_FILE_BYTES: about what the
 * tmpfs has left for them (14 MiB, of which LMDB's pages take a third), less than they need.
 */
const SIMULATED_ROOM_BYTES = 8 * 1024 * 1024;
/** How long ingest may take to resume once space is freed: a few of the probe's backoff steps. */
const RESUME_BOUND_MS = 10_000;

interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly freeBytes?: number;
  readonly waitingForBytes?: number;
  readonly pausedMs?: number;
}

let kafka: KafkaCluster;
let client: KafkaClient;
let root: string;
/** The 20 MiB tmpfs, when this process may mount one. */
let volume: string | undefined;

function mount(dir: string): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${VOLUME}`, 'tmpfs', dir], {
      stdio: 'ignore',
      timeout: 10_000,
    });
    return true;
  } catch {
    return false;
  }
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'kgate-fault-disk-'));
  const dir = join(root, 'volume');
  await mkdir(dir);
  if (mount(dir)) volume = dir;
  kafka = await startKafka();
  client = new KafkaClient({ servers: [kafka.bootstrap] });
  await client.start(AbortSignal.timeout(30_000));
});

after(async () => {
  await client?.close();
  await kafka?.stop();
  if (volume !== undefined) execFileSync('umount', ['-l', volume], { stdio: 'ignore', timeout: 10_000 });
  if (root !== undefined) await rm(root, { recursive: true, force: true });
});

function value(partition: number, i: number): string {
  const head = `p${partition}-r${i}-`;
  return head + 'x'.repeat(VALUE_BYTES - head.length);
}

function freeBytes(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}

function noSpace(): Error {
  return Object.assign(new Error('No space left on device'), { code: 28 });
}

/** Where the store lives, how it runs short of space, and how space comes back. */
interface Volume {
  readonly dir: string;
  /** Called once the store is open, before anything is fetched. */
  attach(store: CacheStore): Promise<void>;
  free(): Promise<void>;
  /** Free bytes as the volume counts them, for the figures. */
  available(): number;
}

/** The real tmpfs, shared with a file of OTHER_FILE_BYTES that is deleted to free space. */
function tmpfsVolume(dir: string): Volume {
  const other = join(dir, 'other-file');
  return {
    dir,
    async attach() {
      await writeFile(other, Buffer.alloc(OTHER_FILE_BYTES, 1));
    },
    async free() {
      await rm(other);
    },
    available: () => freeBytes(dir),
  };
}

/**
 * A volume the store layer simulates: commits (and the gate's probes) fail as on a full disk
 * once the store's records would take more than `room` bytes, the records themselves counted
 * (encoded), not LMDB's pages; freeing raises `room` by OTHER_FILE_BYTES.
 */
function simulatedVolume(dir: string): Volume {
  let room = SIMULATED_ROOM_BYTES;
  let store: CacheStore | undefined;
  const used = (): number => store?.stats().bytes ?? 0;
  return {
    dir,
    attach(opened) {
      store = opened;
      const transaction = opened.transaction.bind(opened);
      opened.transaction = <T>(fn: () => T): T =>
        transaction(() => {
          const result = fn();
          // Thrown inside the transaction: LMDB rolls the whole commit back, as on ENOSPC.
          if (used() > room) throw noSpace();
          return result;
        });
      const probeWrite = opened.probeWrite.bind(opened);
      opened.probeWrite = (bytes = 0): void => {
        if (used() + bytes > room) throw noSpace();
        probeWrite(bytes);
      };
      return Promise.resolve();
    },
    free() {
      room += OTHER_FILE_BYTES;
      return Promise.resolve();
    },
    available: () => room - used(),
  };
}

interface Figures {
  readonly records: number;
  readonly valueBytes: number;
  readonly pausedAfterMs: number;
  readonly cachedAtPause: number;
  readonly freeBytesAtPause: number | undefined;
  readonly waitingForBytes: number | undefined;
  readonly freeBytesNow: number;
  readonly resumedMs: number;
  readonly caughtUpMs: number;
  readonly lost: number;
  readonly duplicated: number;
  readonly reordered: number;
  readonly different: number;
}

async function fillFreeAndCatchUp(v: Volume, name: string): Promise<Figures> {
  const lines: LogLine[] = [];
  const logger = pino(
    { level: 'info' },
    {
      write(line: string): void {
        lines.push(JSON.parse(line) as LogLine);
        if (process.env['KGATE_TEST_LOG'] !== undefined) process.stderr.write(line);
      },
    },
  );
  const topic = `${name}-${Date.now()}`;
  await kafka.createTopic(topic, { partitions: PARTITIONS });
  const metrics = new Registry();
  const server = new CacheServerBinding(
    {
      config: {
        name: 'disk',
        type: 'kafka',
        kind: 'cache_server',
        options: { bootstrap: [topic] },
        routes: [],
        exit: 'south',
      },
      logger,
      metrics,
      stateDir: join(v.dir, name),
      lookup: () => kafkaExit(client),
    },
    // The commit bound stays at its default (16 MiB): larger than what the volume has left.
    { metadataRefreshMs: 500, configRefreshMs: 500, retryInitialMs: 100, retryMaxMs: 1_000 },
  );
  await server.start(AbortSignal.timeout(10_000));
  try {
    const store = server.store;
    assert.ok(store !== undefined);
    await v.attach(store);
    const started = Date.now();
    for (let p = 0; p < PARTITIONS; p++) {
      for (let from = 0; from < RECORDS; from += 25) {
        const batch = [];
        for (let i = from; i < Math.min(RECORDS, from + 25); i++)
          batch.push({ key: Buffer.from(`k${i}`), value: Buffer.from(value(p, i)) });
        await client.produce(topic, p, batch);
      }
    }
    await until('ingest paused', () => server.ingestProblem() !== undefined, 60_000);
    const pausedAt = Date.now();
    const partitions = Array.from({ length: PARTITIONS }, (_, p) => store.partition(topic, p));
    const cachedAtPause = partitions.reduce((n, p) => n + p.stats().records, 0);
    assert.ok(cachedAtPause < PARTITIONS * RECORDS, 'the volume filled before everything was cached');
    const paused = lines.filter((l) => l.msg === 'cache disk full, ingest paused');
    const problem = server.ingestProblem() ?? '';
    const pausedGauge = await metrics.getSingleMetricAsString('kgate_cache_ingest_paused');
    const waitingGauge = (await metrics.getMetricsAsJSON()).find(
      (m) => m.name === 'kgate_cache_ingest_waiting_bytes',
    );

    await v.free();
    const freed = Date.now();
    await until('ingest resumed', () => server.ingestProblem() === undefined, RESUME_BOUND_MS);
    const resumedMs = Date.now() - freed;
    await until(
      'every record cached',
      () => partitions.every((p) => p.nextOffset >= BigInt(RECORDS)),
      30_000,
    );
    const caughtUpMs = Date.now() - freed;
    // Checked once ingest resumed: a pause that never ends is the failure to see first.
    assert.equal(paused.length, 1, 'one line for the pause');
    assert.equal(typeof paused[0]?.freeBytes, 'number', 'the line says how much is free');
    const waitingForBytes = paused[0]?.waitingForBytes ?? 0;
    assert.ok(waitingForBytes > 0, 'and how much it waits for');
    assert.ok(waitingForBytes < OTHER_FILE_BYTES, `it waits for less than what is freed: ${waitingForBytes}`);
    assert.match(problem, /waiting for room to write \d+ bytes/);
    assert.match(pausedGauge, /binding="disk"} 1/);
    assert.deepEqual(
      waitingGauge?.values.find((v) => v.labels['binding'] === 'disk')?.value,
      waitingForBytes,
      'the wait is a metric too',
    );
    assert.equal(lines.filter((l) => l.msg === 'cache disk full, ingest paused').length, 1, 'paused once');
    const resumed = lines.filter((l) => l.msg === 'cache ingest resumed');
    assert.equal(resumed.length, 1, 'one line for the resume');
    assert.match(await metrics.getSingleMetricAsString('kgate_cache_ingest_paused'), /binding="disk"} 0/);
    assert.match(
      await metrics.getSingleMetricAsString('kgate_cache_ingest_waiting_bytes'),
      /binding="disk"} 0/,
    );

    // Every record kcat reads from the broker is in the cache once, in order, byte for byte.
    const counts = { lost: 0, duplicated: 0, reordered: 0, different: 0 };
    for (let p = 0; p < PARTITIONS; p++) {
      const expected = await kcatPartition(kafka.bootstrap, topic, p);
      assert.equal(expected.length, RECORDS);
      const cached = store
        .partition(topic, p)
        .read(0n, { maxRecords: 10 * RECORDS, maxBytes: 64 * 1024 * 1024 })
        .records.map((r) => ({ offset: r.offset, value: r.value?.toString('utf8') ?? '' }));
      const c = compareRecords(expected, cached);
      for (const k of Object.keys(counts) as Array<keyof typeof counts>) counts[k] += c[k];
    }
    assert.deepEqual(counts, { lost: 0, duplicated: 0, reordered: 0, different: 0 });
    return {
      records: PARTITIONS * RECORDS,
      valueBytes: VALUE_BYTES,
      pausedAfterMs: pausedAt - started,
      cachedAtPause,
      freeBytesAtPause: paused[0]?.freeBytes,
      waitingForBytes: paused[0]?.waitingForBytes,
      freeBytesNow: v.available(),
      resumedMs,
      caughtUpMs,
      ...counts,
    };
  } finally {
    await server.stop(AbortSignal.timeout(5_000));
  }
}

describe('disk full: ingest resumes as soon as a commit fits', () => {
  it('on a 20 MiB tmpfs, deleting 6 MiB resumes ingest and every record is cached once', async (t) => {
    if (volume === undefined) {
      t.skip('this process may not mount a tmpfs (root only); the simulated volume below runs anywhere');
      return;
    }
    t.diagnostic(JSON.stringify(await fillFreeAndCatchUp(tmpfsVolume(volume), 'disk-full-tmpfs')));
  });

  it('on a volume the store layer simulates, freeing 6 MiB resumes ingest and every record is cached once', async (t) => {
    t.diagnostic(JSON.stringify(await fillFreeAndCatchUp(simulatedVolume(root), 'disk-full-simulated')));
  });
});
