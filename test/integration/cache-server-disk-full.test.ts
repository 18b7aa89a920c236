// A full disk under a cache_server, against a real broker: ingest stops with one clear error and
// fetches nothing more, what is cached is still served, and once space returns ingest resumes by
// itself with every broker record cached exactly once. Once with the store on a small tmpfs, when
// this process may mount one (root), and once with the store's write-failure seam failing commits
// with the ENOSPC error LMDB raises on a full disk, which runs anywhere.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { statfsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { CacheServerBinding } from '../../src/bindings/kafka/cache_server/index.ts';
import { KafkaClient } from '../../src/bindings/kafka/client/index.ts';
import type { LoadedConfig } from '../../src/config/index.ts';
import { startKafka, type KafkaCluster } from '../../src/embedded/kafka/index.ts';
import { collectStatus } from '../../src/telemetry/index.ts';
import { kafkaExit } from '../support/kafka-exit.ts';

const PARTITIONS = 2;
const VALUE_BYTES = 8 * 1024;
const MAX_COMMIT_BYTES = 128 * 1024;

interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly path?: string;
  readonly code?: number;
}

let kafka: KafkaCluster;
let client: KafkaClient;
let root: string;
/** The small filesystem, when one could be mounted. */
let mounted: string | undefined;
const bindings: CacheServerBinding[] = [];

/** Mounts a 16 MiB tmpfs at dir; false when this process may not mount (not root, or no privilege). */
function mountSmall(dir: string): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', dir], {
      stdio: 'ignore',
      timeout: 10_000,
    });
    return true;
  } catch {
    return false;
  }
}

before(async () => {
  kafka = await startKafka();
  client = new KafkaClient({ servers: [kafka.bootstrap] });
  await client.start(AbortSignal.timeout(30_000));
  root = await mkdtemp(join(tmpdir(), 'kgate-disk-full-'));
  const small = join(root, 'small');
  await mkdir(small);
  if (mountSmall(small)) mounted = small;
});

after(async () => {
  for (const b of bindings) await b.stop(AbortSignal.timeout(5_000));
  await client?.close();
  await kafka?.stop();
  if (mounted !== undefined) execFileSync('umount', ['-l', mounted], { stdio: 'ignore', timeout: 10_000 });
  if (root !== undefined) await rm(root, { recursive: true, force: true });
});

async function waitFor(what: string, condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(50);
  }
}

function value(partition: number, i: number): Buffer {
  const v = Buffer.alloc(VALUE_BYTES, i % 251);
  v.write(`p${partition}-${i}`);
  return v;
}

/** Produces records [from, to) to every partition. */
async function produce(topic: string, from: number, to: number): Promise<void> {
  for (let partition = 0; partition < PARTITIONS; partition++) {
    for (let start = from; start < to; start += 20) {
      const batch = [];
      for (let i = start; i < Math.min(to, start + 20); i++)
        batch.push({ key: null, value: value(partition, i) });
      await client.produce(topic, partition, batch);
    }
  }
}

/** The disk fills, then space returns: by a file taking the rest of the tmpfs, or by the seam. */
interface Disk {
  readonly dir: string;
  fill(server: CacheServerBinding): Promise<void>;
  free(server: CacheServerBinding): Promise<void>;
}

const smallFilesystem = (fs: string): Disk => ({
  dir: fs,
  async fill() {
    const s = statfsSync(fs);
    await writeFile(join(fs, 'filler'), Buffer.alloc(Math.max(0, s.bavail * s.bsize - 32 * 1024)));
  },
  async free() {
    await rm(join(fs, 'filler'));
  },
});

const injected = (dir: string): Disk => ({
  dir,
  fill(server) {
    server.store?.simulateWriteFailure(Object.assign(new Error('No space left on device'), { code: 28 }));
    return Promise.resolve();
  },
  free(server) {
    server.store?.simulateWriteFailure(undefined);
    return Promise.resolve();
  },
});

async function fillAndFree(disk: Disk, name: string): Promise<void> {
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
  await produce(topic, 0, 40);

  let fetches = 0;
  const metrics = new Registry();
  const stateDir = join(disk.dir, name);
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
      stateDir,
      lookup: () =>
        kafkaExit(client, {
          fetch: (t, p, from, options) => {
            fetches++;
            return client.fetch(t, p, from, options);
          },
        }),
    },
    {
      metadataRefreshMs: 500,
      configRefreshMs: 500,
      maintenanceIntervalMs: 500,
      retryInitialMs: 100,
      retryMaxMs: 500,
      maxCommitBytes: MAX_COMMIT_BYTES,
    },
  );
  bindings.push(server);
  await server.start(AbortSignal.timeout(10_000));
  const store = server.store;
  assert.ok(store !== undefined);
  const partitions = Array.from({ length: PARTITIONS }, (_, p) => store.partition(topic, p));
  await waitFor('the first records cached', () => partitions.every((p) => p.nextOffset >= 40n));

  await disk.fill(server);
  await produce(topic, 40, 240);
  await waitFor('ingest paused', () => server.ingestProblem() !== undefined);

  const paused = lines.filter((l) => l.msg === 'cache disk full, ingest paused');
  assert.equal(paused.length, 1, 'one line for the whole pause, not one per partition');
  assert.equal(paused[0]?.level, 50);
  assert.equal(paused[0]?.path, stateDir);
  assert.equal(lines.filter((l) => l.msg === 'cache feed failed; retrying').length, 0);
  assert.match(await metrics.getSingleMetricAsString('kgate_cache_ingest_paused'), /binding="disk"} 1/);
  assert.match(
    await metrics.getSingleMetricAsString('kgate_cache_storage_errors_total'),
    /binding="disk",kind="no_space"} [1-9]/,
  );
  const config: LoadedConfig = {
    file: 'disk.yaml',
    name: 'disk',
    bindings: new Map([['disk', server.config]]),
    warnings: [],
  };
  const status = await collectStatus({ config, binding: () => server, stopping: () => false });
  assert.match(status.caches[0]?.ingestProblem ?? '', /^cache disk full, ingest paused since /);

  // Paused means paused: no partition fetches or grows while the disk stays full.
  await delay(300);
  const fetchesPaused = fetches;
  const cachedPaused = partitions.map((p) => p.nextOffset);
  await delay(1_500);
  assert.equal(fetches, fetchesPaused, 'nothing is fetched while the disk is full');
  assert.deepEqual(
    partitions.map((p) => p.nextOffset),
    cachedPaused,
  );
  assert.ok(server.ingestProblem() !== undefined, 'still paused while the disk is full');

  // Readers are served what is cached, through the same handle cache_clients use.
  const reader = await server.attach(topic);
  for (let p = 0; p < PARTITIONS; p++) {
    const got = reader.store(p).read(0n, { maxRecords: 1_000, maxBytes: 64 * 1024 * 1024 }).records;
    assert.ok(got.length >= 40, `partition ${p} serves its ${got.length} cached records`);
    got.forEach((r, i) => assert.ok(r.value?.equals(value(p, i)), `partition ${p} record ${i} intact`));
  }

  // Space returns: ingest resumes by itself and catches up from each store's next offset.
  await disk.free(server);
  await waitFor('ingest resumed', () => server.ingestProblem() === undefined);
  await produce(topic, 240, 250);
  await waitFor('everything cached', () => partitions.every((p) => p.nextOffset >= 250n));
  assert.equal(lines.filter((l) => l.msg === 'cache ingest resumed').length, 1);
  assert.match(await metrics.getSingleMetricAsString('kgate_cache_ingest_paused'), /binding="disk"} 0/);

  // Every broker record exactly once, in order, byte for byte.
  for (let p = 0; p < PARTITIONS; p++) {
    const got = reader.store(p).read(0n, { maxRecords: 1_000, maxBytes: 64 * 1024 * 1024 }).records;
    assert.deepEqual(
      got.map((r) => r.offset),
      Array.from({ length: 250 }, (_, i) => BigInt(i)),
      `partition ${p} holds each offset once`,
    );
    got.forEach((r, i) => assert.ok(r.value?.equals(value(p, i)), `partition ${p} record ${i}`));
  }
  reader.release();
  await server.stop(AbortSignal.timeout(5_000));
  bindings.splice(bindings.indexOf(server), 1);
}

describe('cache_server on a full disk', () => {
  it('pauses ingest, keeps serving, and resumes by itself: a full tmpfs', async (t) => {
    if (mounted === undefined) {
      t.skip('this process may not mount a tmpfs; the injected failure below covers the same path');
      return;
    }
    await fillAndFree(smallFilesystem(mounted), 'disk-full-tmpfs');
  });

  it('pauses ingest, keeps serving, and resumes by itself: an injected ENOSPC', async () => {
    await fillAndFree(injected(root), 'disk-full-injected');
  });
});
