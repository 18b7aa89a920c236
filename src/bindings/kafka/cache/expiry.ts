// Retention by time and size, in granules that emulate the broker's segments (./README.md,
// "Maintenance"): a walk from the log start decides where the expired head ends, purge.ts deletes it.

import { setImmediate as nextTurn } from 'node:timers/promises';

import { peekTimestamp } from './codec.ts';
import { CHUNK, checkMaintenance, lastValueSize } from './context.ts';
import { recordKey } from './layout.ts';
import type { PartitionState } from './partition-state.ts';
import { moveLogStart, purgeBelow, type MaintenanceResult } from './purge.ts';

const DEFAULT_SEGMENT_BYTES = 1024 * 1024 * 1024;
const DEFAULT_SEGMENT_MS = 7 * 24 * 3600 * 1000;

export interface ExpireOptions {
  /** retention.ms; negative means unlimited. */
  retentionMs?: number;
  /** retention.bytes; negative means unlimited. */
  retentionBytes?: number;
  /** segment.bytes: the size of the granules the head is deleted in. Default 1 GiB. */
  segmentBytes?: number;
  /** segment.ms: a granule also ends when its records span more than this. Default 7 days. */
  segmentMs?: number;
  now?: number;
}

/** PartitionStore.expire. */
export async function expire(s: PartitionState, o: ExpireOptions): Promise<MaintenanceResult> {
  checkMaintenance(s.ctx);
  const c = s.ctx;
  const startPid = s.pid;
  // Leftovers of a truncation interrupted by a crash.
  const m0 = s.meta;
  const left =
    m0.firstOffset >= 0n && m0.firstOffset < m0.logStartOffset
      ? await purgeBelow(s, m0.logStartOffset)
      : { records: 0, bytes: 0 };
  const retentionMs = o.retentionMs ?? -1;
  const retentionBytes = o.retentionBytes ?? -1;
  const segmentBytes = o.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
  const segmentMs = o.segmentMs ?? DEFAULT_SEGMENT_MS;
  const now = o.now ?? Date.now();
  let deleteEnd = -1n;
  if (retentionMs >= 0 || retentionBytes >= 0) {
    let remaining = s.meta.bytes;
    let gBytes = 0;
    let gFirstTs = 0;
    let gMaxTs = -1;
    let gOpen = false;
    let scanFrom = s.meta.logStartOffset;
    let stopped = false;
    const expired = (maxTs: number): boolean => retentionMs >= 0 && now - maxTs > retentionMs;
    scan: while (!c.closed && s.pid === startPid) {
      const pid = s.pid;
      const m = s.meta;
      let seen = 0;
      let lastSeen = -1n;
      const range = { start: recordKey(pid, scanFrom), end: recordKey(pid, m.nextOffset), limit: CHUNK };
      for (const { key: offset, value } of c.records.getRange(range)) {
        const size = lastValueSize;
        const ts = peekTimestamp(value, 0);
        seen++;
        lastSeen = offset;
        if (gOpen && (gBytes + size > segmentBytes || ts - gFirstTs > segmentMs)) {
          // The granule before this record is closed: it goes whole or the walk stops.
          const sizeExpired = retentionBytes >= 0 && remaining - gBytes >= retentionBytes;
          if (!expired(gMaxTs) && !sizeExpired) {
            stopped = true;
            break scan;
          }
          deleteEnd = offset;
          remaining -= gBytes;
          gOpen = false;
        }
        if (!gOpen) {
          gOpen = true;
          gBytes = 0;
          gFirstTs = ts;
          gMaxTs = ts;
        }
        gBytes += size;
        if (ts > gMaxTs) gMaxTs = ts;
      }
      if (seen < CHUNK) break;
      scanFrom = lastSeen + 1n;
      await nextTurn();
    }
    if (s.pid !== startPid) deleteEnd = -1n;
    else if (!stopped && !c.closed && gOpen && expired(gMaxTs)) deleteEnd = s.meta.nextOffset;
  }
  let removed = left;
  if (deleteEnd > s.meta.logStartOffset) {
    moveLogStart(s, deleteEnd);
    const r = await purgeBelow(s, s.meta.logStartOffset);
    removed = { records: left.records + r.records, bytes: left.bytes + r.bytes };
  }
  return {
    removedRecords: removed.records,
    removedBytes: removed.bytes,
    logStartOffset: s.meta.logStartOffset,
  };
}
