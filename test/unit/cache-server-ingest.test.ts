// The pause/resume state machine behind a full disk: the commit coalescer reports failed commits
// to the ingest gate, which pauses ingest on no-space errors only and probes until a write works.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { CacheStore, type RecordInput } from '../../src/bindings/kafka/cache/index.ts';
import { CommitCoalescer } from '../../src/bindings/kafka/cache_server/commits.ts';
import { IngestPausedError } from '../../src/bindings/kafka/cache_server/errors.ts';
import { IngestGate, MIN_PROBE_BYTES, probeBytes } from '../../src/bindings/kafka/cache_server/ingest.ts';
import {
  storageErrorKind,
  type StorageErrorKind,
} from '../../src/bindings/kafka/cache_server/storage-errors.ts';
import { until } from '../support/until.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'kgate-ingest-'));
  dirs.push(d);
  return d;
}

function recs(from: number, count: number): RecordInput[] {
  return Array.from({ length: count }, (_, i) => ({
    offset: BigInt(from + i),
    timestamp: 1000,
    key: null,
    value: Buffer.from(`v${from + i}`),
  }));
}

function lmdbError(message: string, code: number): Error {
  return Object.assign(new Error(message), { code });
}

const noSpace = (): Error => lmdbError('No space left on device', 28);

interface Rig {
  readonly store: CacheStore;
  readonly gate: IngestGate;
  readonly commits: CommitCoalescer;
  readonly logs: Array<{
    level: number;
    msg: string;
    path?: string;
    err?: string;
    freeBytes?: number;
    waitingForBytes?: number;
  }>;
  readonly gauge: boolean[];
  readonly errors: StorageErrorKind[];
  readonly counts: { probes: number };
}

function rig(backoff = { initialMs: 20, maxMs: 40 }): Rig {
  const dir = tempDir();
  const store = CacheStore.open(dir, { durability: 'none' });
  const logs: Rig['logs'] = [];
  const gauge: boolean[] = [];
  const errors: StorageErrorKind[] = [];
  const counts = { probes: 0 };
  const log = pino(
    { level: 'debug' },
    {
      write(line: string): void {
        logs.push(JSON.parse(line) as Rig['logs'][number]);
      },
    },
  );
  const gate = new IngestGate({
    log,
    path: dir,
    backoff,
    classify: (error) => storageErrorKind(error, dir, 0),
    probe: (bytes) => {
      counts.probes++;
      store.probeWrite(bytes);
    },
    free: () => 0,
    changed: (paused) => gauge.push(paused),
    storageError: (kind) => errors.push(kind),
  });
  const commits = new CommitCoalescer(store, 1024 * 1024, gate);
  return { store, gate, commits, logs, gauge, errors, counts };
}

async function close(r: Rig): Promise<void> {
  await r.gate.stop();
  await r.store.close();
}

describe('cache_server ingest gate', () => {
  it('pauses on a full disk with one error line, refuses appends, and resumes by itself', async () => {
    const r = rig();
    const a = r.store.partition('t', 0);
    const b = r.store.partition('t', 1);
    await r.commits.append(a, recs(0, 3), {});
    const running = r.gate.signal;

    r.store.simulateWriteFailure(noSpace());
    const failed = [r.commits.append(a, recs(3, 2), {}), r.commits.append(b, recs(0, 2), {})];
    for (const f of failed) await assert.rejects(f, /No space left on device/);
    assert.equal(r.gate.paused, true);
    assert.ok(running.aborted, 'fetches in flight are told to stop');
    assert.match(r.gate.problem ?? '', /^cache disk full, ingest paused since .*: No space left on device$/);
    assert.deepEqual(
      r.errors,
      ['no_space', 'no_space', 'no_space'],
      'each failed commit counts once, whatever it carried: both appends, then the first, then one record',
    );
    assert.deepEqual(r.gauge, [true]);
    const paused = r.logs.filter((l) => l.msg === 'cache disk full, ingest paused');
    assert.equal(paused.length, 1);
    assert.equal(paused[0]?.level, 50, 'logged at error level');
    assert.equal(paused[0]?.path, r.store.path);
    assert.equal(a.nextOffset, 3n, 'the failed commit left nothing behind');
    assert.equal(b.nextOffset, 0n);

    // While paused, appends are refused without touching the store; reads go on.
    await assert.rejects(r.commits.append(a, recs(3, 2), {}), IngestPausedError);
    assert.deepEqual(
      a.read(0n).records.map((rec) => rec.value?.toString()),
      ['v0', 'v1', 'v2'],
    );
    await until('a second probe', () => r.counts.probes >= 2);
    assert.ok(r.counts.probes >= 2, `probed while full (${r.counts.probes})`);
    assert.equal(r.gate.paused, true);

    const resumed = r.gate.whenResumed(new AbortController().signal);
    r.store.simulateWriteFailure(undefined);
    await resumed;
    assert.equal(r.gate.paused, false);
    assert.equal(r.gate.problem, undefined);
    assert.equal(r.gate.signal.aborted, false, 'a fresh signal for the resumed ingest');
    assert.deepEqual(r.gauge, [true, false]);
    assert.equal(r.logs.filter((l) => l.msg === 'cache ingest resumed').length, 1);

    // Fetching again from each store's next offset stores every record once.
    await r.commits.append(a, recs(3, 4), {});
    await r.commits.append(b, recs(0, 2), {});
    assert.deepEqual(
      a.read(0n).records.map((rec) => rec.offset),
      [0n, 1n, 2n, 3n, 4n, 5n, 6n],
    );
    assert.equal(b.read(0n).records.length, 2);
    await close(r);
  });

  it('commits what fits on a disk short of space, pauses only when one record does not, and resumes once it does', async () => {
    const r = rig();
    const a = r.store.partition('t', 0);
    const b = r.store.partition('t', 1);
    const big = (from: number, count: number): RecordInput[] =>
      recs(from, count).map((rec) => ({ ...rec, value: Buffer.alloc(500, Number(rec.offset)) }));
    const stored = (): number => a.stats().bytes + b.stats().bytes;
    // A disk with `room` bytes left: a commit or a probe larger than that fails, as on a full disk.
    let room = 6_000;
    const transaction = r.store.transaction.bind(r.store);
    r.store.transaction = <T>(fn: () => T): T =>
      transaction(() => {
        const before = stored();
        const result = fn();
        const bytes = stored() - before;
        if (bytes > room) throw noSpace();
        room -= bytes;
        return result;
      });
    const probes: number[] = [];
    r.store.probeWrite = (bytes = 0): void => {
      probes.push(bytes);
      if (bytes > room) throw noSpace();
    };

    const first = r.commits.append(a, big(0, 10), { highWatermark: 10n });
    const second = r.commits.append(b, big(0, 10), { highWatermark: 10n });
    assert.deepEqual(await first, { appended: 10, nextOffset: 10n }, 'the first append fits once alone');
    await assert.rejects(second, /No space left on device/);
    assert.equal(b.nextOffset, 1n, 'of the second, what fitted, down to one record, is stored');
    assert.equal(b.highWatermark, 0n);
    assert.equal(r.gate.paused, true);
    const paused = r.logs.filter((l) => l.msg === 'cache disk full, ingest paused');
    assert.equal(paused.length, 1);
    assert.equal(paused[0]?.waitingForBytes, MIN_PROBE_BYTES, 'waits for room for a commit of one record');
    assert.equal(paused[0]?.freeBytes, 0);
    assert.match(r.gate.problem ?? '', /waiting for room to write 16384 bytes: No space left on device$/);

    // Some room comes back, not enough for the probe: still paused.
    room = 10_000;
    await until('two probes', () => probes.length >= 2);
    assert.equal(r.gate.paused, true);
    assert.ok(probes.every((bytes) => bytes === MIN_PROBE_BYTES));
    room = 100_000;
    await r.gate.whenResumed(new AbortController().signal);
    assert.equal(r.logs.filter((l) => l.msg === 'cache ingest resumed').length, 1);

    // Fetched again from the store's next offset: every record once.
    assert.deepEqual(await r.commits.append(b, big(1, 9), { highWatermark: 10n }), {
      appended: 9,
      nextOffset: 10n,
    });
    assert.deepEqual(
      b.read(0n, { maxRecords: 100 }).records.map((rec) => rec.offset),
      Array.from({ length: 10 }, (_, i) => BigInt(i)),
    );
    assert.equal(r.logs.filter((l) => l.msg === 'cache disk full, ingest paused').length, 1);
    await close(r);
  });

  it('probes with capped, jittered backoff while full, and no more once stopped', async () => {
    const r = rig({ initialMs: 10, maxMs: 60 });
    r.store.simulateWriteFailure(noSpace());
    await assert.rejects(r.commits.append(r.store.partition('t', 0), recs(0, 1), {}));
    await delay(400);
    // Steps of 10, 20, 40, then 60 ms (each waited at least half of): at most 15 in 400 ms. A
    // loaded machine only gets fewer in; that it keeps probing is waited for, not timed.
    const in400 = r.counts.probes;
    assert.ok(in400 <= 15, `probes in 400 ms: ${in400}`);
    await until('three probes', () => r.counts.probes >= 3);
    await close(r);
    const after = r.counts.probes;
    await delay(100);
    assert.equal(r.counts.probes, after, 'stop() ends the probing');
  });

  it('leaves other storage errors to the caller: counted, not paused', async () => {
    const r = rig();
    const a = r.store.partition('t', 0);
    r.store.simulateWriteFailure(lmdbError('MDB_CORRUPTED: Located page was wrong type', -30796));
    await assert.rejects(r.commits.append(a, recs(0, 1), {}), /MDB_CORRUPTED/);
    assert.equal(r.gate.paused, false);
    assert.deepEqual(r.errors, ['other']);
    assert.equal(r.logs.filter((l) => l.level >= 50).length, 0);
    r.store.simulateWriteFailure(undefined);
    await r.commits.append(a, recs(0, 1), {});
    assert.equal(a.nextOffset, 1n);
    await close(r);
  });

  it('releases waiters when stopped', async () => {
    const r = rig({ initialMs: 10_000, maxMs: 10_000 });
    r.store.simulateWriteFailure(noSpace());
    await assert.rejects(r.commits.append(r.store.partition('t', 0), recs(0, 1), {}));
    const stopping = new AbortController();
    const waiting = r.gate.whenResumed(stopping.signal);
    stopping.abort();
    await waiting;
    await close(r);
    assert.equal(r.counts.probes, 0);
  });
});

describe('probeBytes', () => {
  it('asks for twice a commit, and at least a few pages', () => {
    assert.equal(probeBytes(0), MIN_PROBE_BYTES);
    assert.equal(probeBytes(532), MIN_PROBE_BYTES);
    assert.equal(probeBytes(1024 * 1024), 2 * 1024 * 1024);
  });
});

describe('storageErrorKind', () => {
  const dir = tmpdir();
  it('tells no-space failures from other storage failures and from errors of no storage', () => {
    assert.equal(storageErrorKind(lmdbError('No space left on device', 28), dir, 0), 'no_space');
    assert.equal(storageErrorKind(lmdbError('Disk quota exceeded', 122), dir, 0), 'no_space');
    assert.equal(
      storageErrorKind(lmdbError('MDB_MAP_FULL: Environment mapsize limit reached', -30792), dir, 0),
      'no_space',
    );
    assert.equal(storageErrorKind(Object.assign(new Error('x'), { code: 'ENOSPC' }), dir, 0), 'no_space');
    // LMDB reports a write cut short by a filling disk as EIO: no space only when space is short.
    assert.equal(
      storageErrorKind(lmdbError('Input/output error', 5), dir, Number.MAX_SAFE_INTEGER),
      'no_space',
    );
    assert.equal(storageErrorKind(lmdbError('Input/output error', 5), dir, 0), 'other');
    assert.equal(storageErrorKind(lmdbError('MDB_PANIC', -30795), dir, 0), 'other');
    assert.equal(storageErrorKind(new Error('cache store is closed'), dir, 0), undefined);
    assert.equal(storageErrorKind(new DOMException('aborted', 'AbortError'), dir, 0), undefined);
    assert.equal(
      storageErrorKind(Object.assign(new Error('x'), { code: 'ERR_INVALID_ARG' }), dir, 0),
      undefined,
    );
  });
});
