// Dropping a partition's head: the log start moves in one transaction, so reads skip the range at
// once, then the records below it go, with their index entries, one chunk per transaction.

import { setImmediate as nextTurn } from 'node:timers/promises';

import { FLAG_ABORTED, FLAG_CONTROL, FLAG_KEY, keyLength, peekFlags, peekKeyStart } from './codec.ts';
import { CHUNK, TXN_FLAGS, checkMaintenance, lastValueSize } from './context.ts';
import {
  INDEX_KEY_MAX,
  PENDING_DEAD,
  PENDING_GRAVE,
  pendingKey,
  pidKey,
  recordKey,
  writeIndexKey,
} from './layout.ts';
import { putMeta, refreshBounds } from './meta.ts';
import type { PartitionState } from './partition-state.ts';

/** Told of records a maintenance call removed, one committed chunk at a time. */
export type RemovalListener = (records: number, bytes: number) => void;

export interface MaintenanceResult {
  removedRecords: number;
  removedBytes: number;
  logStartOffset: bigint;
}

export interface Removed {
  records: number;
  bytes: number;
}

/**
 * PartitionStore.truncateBefore (`evicted` false: the source dropped the head too) and
 * PartitionStore.evictBefore (true: the source may still hold it).
 */
export async function truncateBefore(
  s: PartitionState,
  offset: bigint,
  onRemoved: RemovalListener | undefined,
  evicted: boolean,
): Promise<MaintenanceResult> {
  checkMaintenance(s.ctx);
  moveLogStart(s, offset, evicted);
  const r = await purgeBelow(s, s.meta.logStartOffset, onRemoved);
  return { removedRecords: r.records, removedBytes: r.bytes, logStartOffset: s.meta.logStartOffset };
}

/**
 * Moves the log start up to offset (never down) in one transaction. `evicted` says who dropped
 * the head: the byte budget (true: the source may still hold it), the source (false), or, left
 * out, expiry, which follows the source's retention and leaves the mark as it was.
 */
export function moveLogStart(s: PartitionState, offset: bigint, evicted?: boolean): void {
  const m = s.meta;
  if (offset <= m.logStartOffset) return;
  const next = { ...m, logStartOffset: offset, evicted: evicted ?? m.evicted };
  if (next.nextOffset < offset) next.nextOffset = offset;
  s.ctx.root.transactionSync(() => putMeta(s.ctx, s.pid, next), TXN_FLAGS);
  s.commit(next);
}

/**
 * Deletes records (and their index entries) below limit, one chunk per transaction. Purges of
 * one partition take turns: a second purge started while the first waits between its chunks
 * would otherwise delete the rest of the first's records and report them as its own, leaving
 * the first to report less than its log start move dropped (as little as nothing).
 */
export async function purgeBelow(
  s: PartitionState,
  limit: bigint,
  onRemoved?: RemovalListener,
): Promise<Removed> {
  // No await when no purge runs, so that a caller's first chunk commits in its own turn.
  while (s.purging !== undefined) await s.purging.then(ignore, ignore);
  const run = purgeChunks(s, limit, onRemoved);
  s.purging = run;
  try {
    return await run;
  } finally {
    if (s.purging === run) s.purging = undefined;
  }
}

async function purgeChunks(s: PartitionState, limit: bigint, onRemoved?: RemovalListener): Promise<Removed> {
  const c = s.ctx;
  let records = 0;
  let bytes = 0;
  const pid = s.pid;
  for (;;) {
    if (c.closed || pid !== s.pid) break;
    let more = false;
    let chunkRecords = 0;
    let chunkBytes = 0;
    const next = { ...s.meta };
    c.root.transactionSync(() => {
      const start = recordKey(pid, 0n);
      const end = recordKey(pid, limit);
      const doomed: bigint[] = [];
      const indexed: Array<{ key: Buffer; offset: bigint }> = [];
      for (const { key: offset, value } of c.records.getRange({ start, end, limit: CHUNK })) {
        const size = lastValueSize;
        const flags = peekFlags(value, 0);
        doomed.push(offset);
        next.bytes -= size;
        next.records--;
        chunkBytes += size;
        if ((flags & (FLAG_KEY | FLAG_CONTROL | FLAG_ABORTED)) === FLAG_KEY) {
          const ks = peekKeyStart(value, 0, flags);
          const ik = Buffer.allocUnsafe(Math.min(5 + keyLength, INDEX_KEY_MAX));
          indexed.push({ key: ik.subarray(0, writeIndexKey(ik, pid, value, ks, keyLength)), offset });
        }
      }
      for (const offset of doomed) c.records.removeSync(recordKey(pid, offset));
      for (const { key, offset } of indexed) {
        const v = c.keys.getBinaryFast(key);
        if (v !== undefined && v.readBigUInt64BE(0) === offset) c.keys.removeSync(key);
      }
      chunkRecords = doomed.length;
      let removed = doomed.length;
      // Time-index values rise with their keys, so the entries to drop are a prefix.
      const timeStart = pidKey(pid);
      const timeEnd = pidKey(pid + 1);
      const timeKeys: Buffer[] = [];
      for (const { key, value } of c.times.getRange({ start: timeStart, end: timeEnd, limit: CHUNK })) {
        if (value.readBigUInt64BE(0) >= limit) break;
        timeKeys.push(key);
      }
      for (const k of timeKeys) c.times.removeSync(k);
      removed += timeKeys.length;
      for (const kind of [PENDING_DEAD, PENDING_GRAVE]) {
        const pend: Buffer[] = [];
        for (const k of c.pending.getKeys({
          start: pendingKey(pid, kind, 0n),
          end: pendingKey(pid, kind, limit),
          limit: CHUNK,
        })) {
          pend.push(k);
        }
        for (const k of pend) c.pending.removeSync(k);
        removed += pend.length;
      }
      if (doomed.length > 0) refreshBounds(c, pid, next);
      if (removed > 0) putMeta(c, pid, next);
      more = removed > 0;
    }, TXN_FLAGS);
    if (pid === s.pid) s.commit(next);
    records += chunkRecords;
    bytes += chunkBytes;
    if (chunkRecords > 0) onRemoved?.(chunkRecords, chunkBytes);
    if (!more) break;
    await nextTurn();
  }
  return { records, bytes };
}

function ignore(): void {}
