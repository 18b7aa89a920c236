import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CacheStore } from '../../src/bindings/kafka/cache/index.ts';

const storeUrl = pathToFileURL(
  join(fileURLToPath(new URL('.', import.meta.url)), '../../src/bindings/kafka/cache/index.ts'),
).href;

const BATCH = 200;
const KEYS = 50;

// Shared by the writer (as source text) and the checker, so both agree on every record's content.
const recordOf = `(off) => ({
  offset: BigInt(off),
  timestamp: 1_700_000_000_000 + off,
  key: Buffer.from('k' + (off % ${KEYS})),
  value: off % 13 === 0 ? null : Buffer.alloc((off * 7919) % 5000, off & 0xff),
  headers: off % 5 === 0 ? [{ name: 'n', value: Buffer.from(String(off)) }] : [],
})`;

const writer = `
import { CacheStore } from ${JSON.stringify(storeUrl)};
const recordOf = ${recordOf};
const store = CacheStore.open(process.env.DIR);
const p = store.partition('t', 0);
let off = Number(p.nextOffset);
for (let batches = 1; ; batches++) {
  const batch = [];
  for (let i = 0; i < ${BATCH}; i++, off++) batch.push(recordOf(off));
  p.append(batch, { highWatermark: BigInt(off) });
  if (batches === 5) process.stdout.write('ready\\n');
  if (batches % 7 === 0) await p.compact({ minCompactionLagMs: 0, deleteRetentionMs: 1e12, now: 2e12 });
  if (batches % 3 === 0) await p.expire({ retentionBytes: 500_000, segmentBytes: 50_000 });
}
`;

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function writeUntilKilled(dir: string, delayMs: number): Promise<void> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', writer], {
    env: { ...process.env, DIR: dir },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.setEncoding('utf8');
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: string) => {
      out += chunk;
      if (out.includes('ready')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`writer exited early with ${code}`)));
  });
  await ready;
  await sleep(delayMs);
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  const [code, signal] = (await exited) as [number | null, string | null];
  assert.equal(code, null);
  assert.equal(signal, 'SIGKILL');
}

describe('cache store: crash safety', () => {
  it('is consistent after kill -9 during writes and maintenance, and resumes at nextOffset', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kgate-cache-crash-'));
    dirs.push(dir);
    const expected = new Function(`return ${recordOf}`)() as (off: number) => {
      key: Buffer;
      value: Buffer | null;
      headers: { name: string; value: Buffer }[];
      timestamp: number;
    };
    let previousNext = 0n;
    for (const delay of [150, 40, 400]) {
      await writeUntilKilled(dir, delay);
      const store = CacheStore.open(dir);
      const p = store.partition('t', 0);
      // Finishes a head deletion the kill may have interrupted.
      await p.expire({});
      const next = p.nextOffset;
      assert.ok(next > previousNext, `progress: ${previousNext} -> ${next}`);
      assert.equal(next % BigInt(BATCH), 0n, 'a batch is stored whole or not at all');
      assert.equal(p.highWatermark, next);
      previousNext = next;

      let count = 0;
      let bytes = 0;
      let prev = -1n;
      const latest = new Map<string, bigint>();
      for (let at = 0n; ;) {
        const r = p.read(at, { maxRecords: 1000 });
        if (r.records.length === 0) break;
        for (const rec of r.records) {
          assert.ok(rec.offset > prev && rec.offset >= p.logStartOffset && rec.offset < next);
          prev = rec.offset;
          const want = expected(Number(rec.offset));
          assert.deepEqual(rec.key, want.key);
          assert.deepEqual(rec.value, want.value);
          assert.equal(rec.timestamp, want.timestamp);
          assert.equal(rec.headers.length, want.headers.length);
          latest.set(String(rec.key), rec.offset);
          count++;
          bytes += rec.size;
        }
        at = r.nextOffset;
      }
      const s = p.stats();
      assert.equal(s.records, count);
      assert.equal(s.bytes, bytes);
      assert.equal(s.lastOffset, next - 1n, 'the newest record is never removed');
      for (let k = 0; k < KEYS; k++) {
        const key = `k${k}`;
        assert.equal(p.latestOffsetOf(Buffer.from(key)), latest.get(key) ?? null, key);
      }
      await store.close();
    }
  });
});
