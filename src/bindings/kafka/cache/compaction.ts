// Compaction by queues (./README.md, "Maintenance"): append queues the work each record creates,
// compact drains the queues, so a run costs the records it removes rather than the partition's size.

import { setImmediate as nextTurn } from 'node:timers/promises';

import { isTombstoneFlags, keyLength, peekFlags, peekKeyStart, peekTimestamp } from './codec.ts';
import { CHUNK, TXN_FLAGS, checkMaintenance, type Context } from './context.ts';
import { PENDING_DEAD, PENDING_GRAVE, pendingKey, recordKey, writeIndexKey } from './layout.ts';
import { putMeta, refreshBounds } from './meta.ts';
import type { PartitionState } from './partition-state.ts';
import type { MaintenanceResult } from './purge.ts';

const DEFAULT_DELETE_RETENTION_MS = 24 * 3600 * 1000;

export interface CompactOptions {
  minCompactionLagMs?: number;
  /** Only bounds the nextDueAt hint: compaction runs whenever it is called. */
  maxCompactionLagMs?: number;
  /** delete.retention.ms: how long tombstones and transaction markers outlive their age. Default 1 day. */
  deleteRetentionMs?: number;
  now?: number;
}

export interface CompactResult extends MaintenanceResult {
  /** When calling compact again could remove more (epoch ms), or null when nothing is queued. */
  nextDueAt: number | null;
}

/**
 * Inside append's write transaction: queues work of kind (PENDING_DEAD or PENDING_GRAVE) created
 * by the record at `at` (8 bytes, u64 BE), on the record at `target`. pendKey holds the pid already.
 */
export function queue(c: Context, pendKey: Buffer, kind: number, at: Buffer, target: Buffer): void {
  pendKey[4] = kind;
  at.copy(pendKey, 5, 0, 8);
  c.pending.putSync(pendKey, target);
}

/** PartitionStore.compact. */
export async function compact(s: PartitionState, o: CompactOptions): Promise<CompactResult> {
  checkMaintenance(s.ctx);
  const c = s.ctx;
  const now = o.now ?? Date.now();
  const minLag = Math.max(0, o.minCompactionLagMs ?? 0);
  const maxLag = o.maxCompactionLagMs ?? Number.POSITIVE_INFINITY;
  const graveLag = Math.max(minLag, o.deleteRetentionMs ?? DEFAULT_DELETE_RETENTION_MS);
  let removedRecords = 0;
  let removedBytes = 0;
  let nextDueAt: number | null = null;
  const due = (t: number): void => {
    if (nextDueAt === null || t < nextDueAt) nextDueAt = t;
  };
  const startPid = s.pid;
  for (const kind of [PENDING_DEAD, PENDING_GRAVE]) {
    const lag = kind === PENDING_DEAD ? minLag : graveLag;
    let done = false;
    let from = 0n;
    while (!done && !c.closed && s.pid === startPid) {
      const pid = startPid;
      const next = { ...s.meta };
      let changed = false;
      c.root.transactionSync(() => {
        const queued: Array<{ key: Buffer; value: Buffer }> = [];
        for (const entry of c.pending.getRange({
          start: pendingKey(pid, kind, from),
          end: pendingKey(pid, kind + 1, 0n),
          limit: CHUNK,
        })) {
          queued.push(entry);
        }
        if (queued.length < CHUNK) done = true;
        let boundsMoved = false;
        for (const { key: pk, value } of queued) {
          from = pk.readBigUInt64BE(5) + 1n;
          const offset = value.readBigUInt64BE(0);
          const rk = recordKey(pid, offset);
          const rec = c.records.getBinaryFast(rk);
          if (rec === undefined) {
            c.pending.removeSync(pk);
            changed = true;
            continue;
          }
          const size = rec.length;
          const flags = peekFlags(rec, 0);
          const ts = peekTimestamp(rec, 0);
          let indexKey: Buffer | null = null;
          if (kind === PENDING_GRAVE && isTombstoneFlags(flags)) {
            const ks = peekKeyStart(rec, 0, flags);
            const kl = writeIndexKey(c.idxKey, pid, rec, ks, keyLength);
            indexKey = Buffer.from(c.idxKey.subarray(0, kl));
            const latest = c.keys.getBinaryFast(indexKey);
            if (latest === undefined || latest.readBigUInt64BE(0) !== offset) {
              // Superseded since: the dead queue owns it now.
              c.pending.removeSync(pk);
              changed = true;
              continue;
            }
          }
          if (ts + lag > now) {
            due(ts + lag);
            // Graves leave in offset order, like the broker's cleaner passing over a segment.
            // Dead records are queued in the order they were superseded, not by age, so the
            // walk goes on; what it passes over is what arrived within the last lag.
            if (kind === PENDING_GRAVE) {
              done = true;
              break;
            }
            continue;
          }
          c.records.removeSync(rk);
          if (indexKey !== null) c.keys.removeSync(indexKey);
          c.pending.removeSync(pk);
          changed = true;
          next.records--;
          next.bytes -= size;
          removedRecords++;
          removedBytes += size;
          if (offset === next.firstOffset || offset === next.lastOffset) boundsMoved = true;
        }
        if (boundsMoved) refreshBounds(c, pid, next);
        if (changed) putMeta(c, pid, next);
      }, TXN_FLAGS);
      if (pid === s.pid) s.commit(next);
      if (!done) await nextTurn();
    }
  }
  if (nextDueAt !== null && maxLag < Number.POSITIVE_INFINITY) due(now + maxLag);
  return { removedRecords, removedBytes, logStartOffset: s.meta.logStartOffset, nextDueAt };
}
