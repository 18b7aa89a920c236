// Per-partition metadata (the meta database, keyed by pid): watermarks, stored bounds and totals,
// rewritten by every commit that changes the partition. The layout is in ./README.md; keep the two
// in step.

import type { Context } from './context.ts';
import { pidKey, recordKey } from './layout.ts';

export const META_SIZE = 160;
export const TOPIC_ID_MAX = 64;

export interface Meta {
  logStartOffset: bigint;
  nextOffset: bigint;
  highWatermark: bigint;
  lastStableOffset: bigint;
  firstOffset: bigint;
  lastOffset: bigint;
  bytes: number;
  records: number;
  maxTimestamp: number;
  topicId: string;
  /**
   * Records below the log start were dropped by the cache's byte budget, not by the source, which
   * may still hold them: reads from the log start see less than the topic has.
   */
  evicted: boolean;
}

export function freshMeta(topicId: string): Meta {
  return {
    logStartOffset: 0n,
    nextOffset: 0n,
    highWatermark: 0n,
    lastStableOffset: 0n,
    firstOffset: -1n,
    lastOffset: -1n,
    bytes: 0,
    records: 0,
    maxTimestamp: -1,
    topicId,
    evicted: false,
  };
}

/** A topic id must fit its field of the metadata. */
export function checkTopicId(topicId: string): void {
  if (Buffer.byteLength(topicId, 'utf8') > TOPIC_ID_MAX)
    throw new Error(`topic id longer than ${TOPIC_ID_MAX} bytes`);
}

export function encodeMeta(buf: Buffer, m: Meta): Buffer {
  buf.fill(0);
  buf[0] = 1;
  buf[1] = m.evicted ? 1 : 0;
  buf.writeBigInt64LE(m.logStartOffset, 8);
  buf.writeBigInt64LE(m.nextOffset, 16);
  buf.writeBigInt64LE(m.highWatermark, 24);
  buf.writeBigInt64LE(m.lastStableOffset, 32);
  buf.writeBigInt64LE(m.firstOffset, 40);
  buf.writeBigInt64LE(m.lastOffset, 48);
  buf.writeDoubleLE(m.bytes, 56);
  buf.writeDoubleLE(m.records, 64);
  buf.writeDoubleLE(m.maxTimestamp, 72);
  const n = buf.write(m.topicId, 81, TOPIC_ID_MAX, 'utf8');
  buf[80] = n;
  return buf.subarray(0, 81 + n);
}

export function decodeMeta(buf: Buffer): Meta {
  if (buf[0] !== 1) throw new Error(`partition metadata has unknown version ${buf[0]}`);
  const n = buf[80] ?? 0;
  return {
    logStartOffset: buf.readBigInt64LE(8),
    nextOffset: buf.readBigInt64LE(16),
    highWatermark: buf.readBigInt64LE(24),
    lastStableOffset: buf.readBigInt64LE(32),
    firstOffset: buf.readBigInt64LE(40),
    lastOffset: buf.readBigInt64LE(48),
    bytes: buf.readDoubleLE(56),
    records: buf.readDoubleLE(64),
    maxTimestamp: buf.readDoubleLE(72),
    topicId: buf.toString('utf8', 81, 81 + n),
    evicted: buf[1] === 1,
  };
}

/** The committed metadata of a pid, or undefined when it has none. */
export function getMeta(c: Context, pid: number): Meta | undefined {
  const v = c.meta.getBinaryFast(pidKey(pid));
  return v === undefined ? undefined : decodeMeta(v);
}

/** Inside a write transaction. */
export function putMeta(c: Context, pid: number, m: Meta): void {
  c.meta.putSync(pidKey(pid), encodeMeta(c.metaBuf, m));
}

/** Re-reads the stored offset bounds of a partition inside the current write transaction. */
export function refreshBounds(c: Context, pid: number, m: Meta): void {
  const lo = recordKey(pid, 0n);
  const hi = pidKey(pid + 1);
  m.firstOffset = -1n;
  m.lastOffset = -1n;
  for (const o of c.records.getKeys({ start: lo, end: hi, limit: 1 })) m.firstOffset = o;
  for (const o of c.records.getKeys({ start: hi, end: pidKey(pid), limit: 1, reverse: true }))
    m.lastOffset = o;
}

/** Inside a write transaction, once the pid's data is gone. */
export function removeMeta(c: Context, pid: number): void {
  c.meta.removeSync(pidKey(pid));
}
