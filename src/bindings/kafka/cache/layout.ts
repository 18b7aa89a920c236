// Keys of the per-partition databases (records, keys, times, pending): each starts with the
// partition id, big-endian, so one partition's keys are one contiguous, ordered range. The table in
// ./README.md describes them; keep the two in step.

import { createHash } from 'node:crypto';

// LMDB keys are limited (1978 bytes in lmdb-js builds, 511 in stock LMDB); longer Kafka keys are
// indexed by their SHA-256 instead. 4 (partition id) + 1 (tag) + 475 stays under either limit.
const RAW_KEY_MAX = 475;
const KEY_TAG_RAW = 0;
const KEY_TAG_SHA256 = 1;

/** The longest key-index key writeIndexKey writes: pid, tag, then the raw key or its SHA-256. */
export const INDEX_KEY_MAX = 5 + RAW_KEY_MAX + 32;

// Pending compaction work, keyed [pid][kind][offset of the record that created the work] so that
// appends add to the end of the queue instead of dirtying a random page of it.
// Dead: value = offset of a record superseded by a newer one with the same key, or aborted.
export const PENDING_DEAD = 0;
// Grave: value = offset of a tombstone or transaction marker, removable after delete.retention.ms.
export const PENDING_GRAVE = 1;

/** The pid alone: the start of a partition's range in every database, and the end of the previous one's. */
export function pidKey(pid: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(pid, 0);
  return b;
}

export function recordKey(pid: number, offset: bigint): Buffer {
  const b = Buffer.allocUnsafe(12);
  b.writeUInt32BE(pid, 0);
  b.writeBigUInt64BE(offset, 4);
  return b;
}

export function pendingKey(pid: number, kind: number, offset: bigint): Buffer {
  const b = Buffer.allocUnsafe(13);
  b.writeUInt32BE(pid, 0);
  b[4] = kind;
  b.writeBigUInt64BE(offset, 5);
  return b;
}

/** Where a seek in the time index for the first record at or after timestamp starts: [pid][u48 BE]. */
export function timeSeekKey(pid: number, timestamp: number): Buffer {
  const b = Buffer.allocUnsafe(10);
  b.writeUInt32BE(pid, 0);
  b.writeUIntBE(Math.max(0, Math.min(timestamp, 2 ** 48 - 1)), 4, 6);
  return b;
}

/**
 * Writes the key-index key [pid][tag][key bytes or SHA-256] into target; returns its length.
 * source[start..start+length) holds the Kafka key.
 */
export function writeIndexKey(
  target: Buffer,
  pid: number,
  source: Uint8Array,
  start: number,
  length: number,
): number {
  target.writeUInt32BE(pid, 0);
  if (length <= RAW_KEY_MAX) {
    target[4] = KEY_TAG_RAW;
    target.set(source.subarray(start, start + length), 5);
    return 5 + length;
  }
  target[4] = KEY_TAG_SHA256;
  const digest = createHash('sha256')
    .update(source.subarray(start, start + length))
    .digest();
  digest.copy(target, 5);
  return 5 + digest.length;
}
