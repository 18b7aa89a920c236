// The catalog database: the store's format version, which partition id (pid) holds which topic
// partition, the next pid to hand out, and the pids whose data is left to reclaim. Keys are UTF-8
// names ('format', 'next-pid', 'p/<topic>/<partition>') or 'g' + pid; see ./README.md.

import type { Context } from './context.ts';

/** Version of the whole layout (every database); a store of another version is refused. */
export const FORMAT_VERSION = 1;

const CATALOG_FORMAT = Buffer.from('format', 'utf8');
const CATALOG_NEXT_PID = Buffer.from('next-pid', 'utf8');
// Outside the 'p/' (partitions) and 'g' (garbage) ranges that are listed.
const CATALOG_PROBE = Buffer.from('space-probe', 'utf8');

const PARTITIONS_START = Buffer.from('p/', 'utf8');
const PARTITIONS_END = Buffer.from('p0', 'utf8'); // '0' follows '/'

function catalogKey(topic: string, partition: number): Buffer {
  return Buffer.from(`p/${topic}/${partition}`, 'utf8');
}

function garbageKey(pid: number): Buffer {
  const b = Buffer.allocUnsafe(5);
  b[0] = 0x67; // 'g'
  b.writeUInt32BE(pid, 1);
  return b;
}

/** The format the store was created with, or undefined before its writer first opened it. */
export function storedFormat(c: Context): number | undefined {
  return c.catalog.getBinaryFast(CATALOG_FORMAT)?.readUInt32BE(0);
}

/** Inside a write transaction. */
export function writeFormat(c: Context): void {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(FORMAT_VERSION, 0);
  c.catalog.putSync(CATALOG_FORMAT, b);
}

/** Inside a write transaction: a pid no partition has had in this store. */
export function allocatePid(c: Context): number {
  const v = c.catalog.getBinaryFast(CATALOG_NEXT_PID);
  const pid = v === undefined ? 1 : v.readUInt32BE(0);
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(pid + 1, 0);
  c.catalog.putSync(CATALOG_NEXT_PID, b);
  return pid;
}

/** The pid of a topic partition, or undefined when the store has never held it. */
export function partitionPid(c: Context, topic: string, partition: number): number | undefined {
  return c.catalog.getBinaryFast(catalogKey(topic, partition))?.readUInt32BE(0);
}

/** Inside a write transaction. */
export function assignPid(c: Context, topic: string, partition: number, pid: number): void {
  const pk = Buffer.allocUnsafe(4);
  pk.writeUInt32BE(pid, 0);
  c.catalog.putSync(catalogKey(topic, partition), pk);
}

/** Inside a write transaction: the catalog no longer names the partition. */
export function forgetPid(c: Context, topic: string, partition: number): void {
  c.catalog.removeSync(catalogKey(topic, partition));
}

/** Every topic partition the catalog names. */
export function listPartitions(c: Context): Array<{ topic: string; partition: number }> {
  const out: Array<{ topic: string; partition: number }> = [];
  for (const key of c.catalog.getKeys({ start: PARTITIONS_START, end: PARTITIONS_END })) {
    const name = key.toString('utf8', 2);
    const cut = name.lastIndexOf('/');
    out.push({ topic: name.slice(0, cut), partition: Number(name.slice(cut + 1)) });
  }
  return out;
}

/**
 * Inside a write transaction: marks a pid's data for reclaiming. The mark stays until the data is
 * gone, so a reclaim cut short by a restart resumes.
 */
export function markGarbage(c: Context, pid: number): void {
  c.catalog.putSync(garbageKey(pid), Buffer.alloc(0));
}

/** Up to limit pids marked for reclaiming. */
export function garbagePids(c: Context, limit: number): number[] {
  const pids: number[] = [];
  for (const key of c.catalog.getKeys({ start: Buffer.from('g'), end: Buffer.from('h'), limit })) {
    if (key.length === 5) pids.push(key.readUInt32BE(1));
  }
  return pids;
}

/** Inside a write transaction, once a pid's data is gone. */
export function forgetGarbage(c: Context, pid: number): void {
  c.catalog.removeSync(garbageKey(pid));
}

/**
 * Inside a write transaction: with `bytes` 0, a write that leaves the catalog as it was; else
 * stores that many bytes under the probe key, for removeProbe() to take away in the next one.
 */
export function writeProbe(c: Context, bytes = 0): void {
  if (bytes > 0) {
    c.catalog.putSync(CATALOG_PROBE, Buffer.alloc(bytes));
    return;
  }
  c.catalog.putSync(CATALOG_PROBE, CATALOG_PROBE);
  c.catalog.removeSync(CATALOG_PROBE);
}

/** Inside a write transaction: removes what writeProbe stored, if anything. */
export function removeProbe(c: Context): void {
  c.catalog.removeSync(CATALOG_PROBE);
}
