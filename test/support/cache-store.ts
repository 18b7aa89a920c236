import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CachedRecord, PartitionStore, RecordInput } from '../../src/bindings/kafka/cache/index.ts';

// What the cache store's unit tests share: directories for stores that are removed at the end,
// records that differ by offset alone, and a partition read whole.

const dirs: string[] = [];

/** A fresh directory for a store; removeTempDirs() removes it. */
export function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'kgate-cache-'));
  dirs.push(d);
  return d;
}

/** Removes every directory tempDir() made; for a test file's `after`. */
export function removeTempDirs(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** An unkeyed record at `offset` valued `v${offset}`, with `fields` over that. */
export function rec(offset: number | bigint, fields: Partial<RecordInput> = {}): RecordInput {
  return { offset: BigInt(offset), timestamp: 1_000, key: null, value: Buffer.from(`v${offset}`), ...fields };
}

/** Every record of the partition from `from` on, read in batches as a consumer would. */
export function readAll(p: PartitionStore, from = 0n): CachedRecord[] {
  const out: CachedRecord[] = [];
  let at = from;
  for (;;) {
    const r = p.read(at, { maxRecords: 1000, maxBytes: 64 * 1024 * 1024 });
    if (r.records.length === 0) return out;
    out.push(...r.records);
    at = r.nextOffset;
  }
}
