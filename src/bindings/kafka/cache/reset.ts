// A recreated topic: its partitions switch to fresh, empty key ranges in one transaction each, and
// the old ranges are deleted afterwards, in the background and after a restart if need be. A
// deleted topic, or a partition gone with its topic's old incarnation, leaves the catalog the same
// way, so that nothing lists it any more; a write to it later starts a fresh range.

import { setImmediate as nextTurn } from 'node:timers/promises';

import { allocatePid, assignPid, forgetGarbage, forgetPid, garbagePids, markGarbage } from './catalog.ts';
import { CHUNK, TXN_FLAGS, checkMaintenance, type Context } from './context.ts';
import { pidKey, recordKey } from './layout.ts';
import { checkTopicId, freshMeta, putMeta, removeMeta } from './meta.ts';
import { NO_PID, type PartitionState } from './partition-state.ts';

/** PartitionStore.reset. */
export async function reset(s: PartitionState, topicId: string): Promise<void> {
  checkMaintenance(s.ctx);
  checkTopicId(topicId);
  const c = s.ctx;
  const old = s.pid;
  const fresh = freshMeta(topicId);
  let pid = 0;
  c.root.transactionSync(() => {
    pid = allocatePid(c);
    assignPid(c, s.topic, s.partition, pid);
    if (old !== NO_PID) markGarbage(c, old);
    putMeta(c, pid, fresh);
  }, TXN_FLAGS);
  s.commit(fresh, pid);
  await reclaim(c);
}

/**
 * PartitionStore.drop: the catalog forgets the partition and its range is marked for reclaiming,
 * in one transaction made before this returns; the range is deleted afterwards.
 */
export function drop(s: PartitionState): Promise<number> {
  checkMaintenance(s.ctx);
  const c = s.ctx;
  const old = s.pid;
  if (old === NO_PID) return Promise.resolve(0);
  c.root.transactionSync(() => {
    forgetPid(c, s.topic, s.partition);
    markGarbage(c, old);
  }, TXN_FLAGS);
  s.commit(freshMeta(''), NO_PID);
  return reclaim(c);
}

/**
 * Inside or outside a write transaction: gives a dropped partition a fresh, empty range again
 * before something is written to it. Nothing to do for a partition the catalog names.
 */
export function hold(s: PartitionState): void {
  if (s.pid !== NO_PID) return;
  const c = s.ctx;
  const fresh = freshMeta('');
  let pid = 0;
  c.root.transactionSync(() => {
    pid = allocatePid(c);
    assignPid(c, s.topic, s.partition, pid);
    putMeta(c, pid, fresh);
  }, TXN_FLAGS);
  s.commit(fresh, pid);
}

/** CacheStore.reclaim: deletes the ranges marked as garbage, a chunk per transaction. */
export async function reclaim(c: Context): Promise<number> {
  if (c.reader) throw new Error('cache store is open for reading only');
  let removed = 0;
  for (;;) {
    if (c.closed) return removed;
    const pids = garbagePids(c, 16);
    if (pids.length === 0) return removed;
    for (const pid of pids) {
      for (;;) {
        if (c.closed) return removed;
        const n = c.root.transactionSync(() => {
          const lo = pidKey(pid);
          const hi = pidKey(pid + 1);
          let n = 0;
          const offsets: bigint[] = [];
          for (const o of c.records.getKeys({ start: lo, end: hi, limit: CHUNK })) offsets.push(o);
          for (const o of offsets) c.records.removeSync(recordKey(pid, o));
          n += offsets.length;
          for (const db of [c.keys, c.times, c.pending]) {
            const doomed: Buffer[] = [];
            for (const k of db.getKeys({ start: lo, end: hi, limit: CHUNK })) doomed.push(k);
            for (const k of doomed) db.removeSync(k);
            n += doomed.length;
          }
          if (n === 0) {
            removeMeta(c, pid);
            forgetGarbage(c, pid);
          }
          return n;
        }, TXN_FLAGS);
        removed += n;
        if (n === 0) break;
        await nextTurn();
      }
    }
  }
}
