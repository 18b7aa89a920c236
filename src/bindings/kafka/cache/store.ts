// Persistent per-partition cache of Kafka records on LMDB. Layout, encoding and the reasons for
// them are in ./README.md.

import { createHash } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { open } from 'lmdb';

import {
  FLAG_ABORTED,
  FLAG_CONTROL,
  FLAG_KEY,
  decodeRecord,
  encodeRecord,
  encodedSize,
  isTombstoneFlags,
  keyLength,
  peekFlags,
  peekKeyStart,
  peekTimestamp,
} from './codec.ts';
import type { CachedRecord, RecordInput } from './codec.ts';

export type { CachedHeader, CachedRecord, RecordHeaderInput, RecordInput } from './codec.ts';

const FORMAT_VERSION = 1;

// ABORTABLE (a throw rolls the batch back) | SYNCHRONOUS_COMMIT (visible when transactionSync
// returns) | NO_SYNC_FLUSH (with durability 'overlapped', return before the flush).
const TXN_FLAGS = 0x10003;

// Maintenance deletes at most this many records per write transaction and yields to the event
// loop between transactions, so a large expiry neither blocks fetch handling nor grows one
// transaction's dirty pages without bound.
const CHUNK = 2048;

// LMDB keys are limited (1978 bytes in lmdb-js builds, 511 in stock LMDB); longer Kafka keys are
// indexed by their SHA-256 instead. 4 (partition id) + 1 (tag) + 475 stays under either limit.
const RAW_KEY_MAX = 475;
const KEY_TAG_RAW = 0;
const KEY_TAG_SHA256 = 1;

// Pending compaction work, keyed [pid][kind][offset of the record that created the work] so that
// appends add to the end of the queue instead of dirtying a random page of it.
// Dead: value = offset of a record superseded by a newer one with the same key, or aborted.
const PENDING_DEAD = 0;
// Grave: value = offset of a tombstone or transaction marker, removable after delete.retention.ms.
const PENDING_GRAVE = 1;

const EMPTY = Buffer.alloc(0);
const META_SIZE = 160;
const TOPIC_ID_MAX = 64;

const DEFAULT_SEGMENT_BYTES = 1024 * 1024 * 1024;
const DEFAULT_SEGMENT_MS = 7 * 24 * 3600 * 1000;
const DEFAULT_DELETE_RETENTION_MS = 24 * 3600 * 1000;

export interface AppendOptions {
  /** Fetch position after this batch when it ends past its last record (a gap left by compaction upstream). */
  nextOffset?: bigint;
  highWatermark?: bigint;
  lastStableOffset?: bigint;
}

export interface AppendResult {
  /** Records stored; records below the partition's next offset are skipped as already cached. */
  appended: number;
  nextOffset: bigint;
}

export interface ReadLimits {
  /** Default 500. */
  maxRecords?: number;
  /** Encoded bytes; at least one record is returned even when it alone is larger. Default 1 MiB. */
  maxBytes?: number;
}

export interface ReadResult {
  records: CachedRecord[];
  /** Where the next read continues: after the last record returned, or past a trailing hole. */
  nextOffset: bigint;
}

export interface SharedReadResult {
  readonly records: readonly CachedRecord[];
  readonly nextOffset: bigint;
}

interface SharedRead {
  readonly maxRecords: number;
  readonly maxBytes: number;
  readonly nextOffset: bigint;
  /** Held weakly: the readers using the records keep them alive, this cache does not. */
  readonly records: WeakRef<readonly CachedRecord[]>;
}

// Distinct start offsets remembered per partition between two commits: readers at the head ask
// from one offset, the others are catching up and rarely meet.
const SHARED_READS = 16;

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

export interface CompactOptions {
  minCompactionLagMs?: number;
  /** Only bounds the nextDueAt hint: compaction runs whenever it is called. */
  maxCompactionLagMs?: number;
  /** delete.retention.ms: how long tombstones and transaction markers outlive their age. Default 1 day. */
  deleteRetentionMs?: number;
  now?: number;
}

/** Told of records a maintenance call removed, one committed chunk at a time. */
export type RemovalListener = (records: number, bytes: number) => void;

export interface MaintenanceResult {
  removedRecords: number;
  removedBytes: number;
  logStartOffset: bigint;
}

export interface CompactResult extends MaintenanceResult {
  /** When calling compact again could remove more (epoch ms), or null when nothing is queued. */
  nextDueAt: number | null;
}

export interface PartitionStats {
  records: number;
  /** Sum of encoded record sizes (keys and LMDB page overhead excluded). */
  bytes: number;
  /** Lowest and highest stored offsets, null when the partition holds no record. */
  firstOffset: bigint | null;
  lastOffset: bigint | null;
  logStartOffset: bigint;
  nextOffset: bigint;
  highWatermark: bigint;
  lastStableOffset: bigint;
  topicId: string;
}

export interface CacheStoreOptions {
  /** Initial LMDB map size in bytes; lmdb-js grows it when full. Default 1 GiB. */
  mapSize?: number;
  /**
   * When a commit reaches the disk. Every mode survives a killed process with nothing committed
   * lost, since committed pages are in the OS page cache.
   * - 'sync' (default): each commit fsyncs before returning; an OS crash loses nothing.
   * - 'overlapped': lmdb-js's overlappingSync, the fsync runs on another thread after the commit
   *   returns; an OS crash falls back to the last flushed commit, still consistent. On this
   *   project's reference machine it measured slower than 'sync' for batches of random keys
   *   (docs/dependencies.md), so it is not the default.
   * - 'none': no fsync (LMDB's noSync); an OS crash may corrupt the file, which then has to be
   *   deleted and refetched. For tests and throwaway caches.
   */
  durability?: 'sync' | 'overlapped' | 'none';
  /**
   * Opens an environment another thread of this process writes, for reading only: nothing is
   * created or written, and partition metadata is re-read on `refresh()` rather than kept current
   * by this store's own writes. The writer must have opened the directory first.
   */
  reader?: boolean;
}

export interface CacheStoreStats {
  partitions: number;
  records: number;
  bytes: number;
  /** Bytes of the LMDB file in use (last page × page size), free pages included. */
  fileBytes: number;
}

interface RangeQuery {
  start?: Buffer;
  end?: Buffer;
  limit?: number;
  reverse?: boolean;
}

// The part of lmdb-js's Database used here, typed for the key and value encodings chosen below.
interface Db<K> {
  putSync(key: Buffer, value: Buffer): boolean;
  removeSync(key: Buffer): boolean;
  getBinaryFast(key: Buffer): Buffer | undefined;
  getRange(query: RangeQuery): Iterable<{ key: K; value: Buffer }>;
  getKeys(query: RangeQuery): Iterable<K>;
}

interface Root {
  openDB(options: object): unknown;
  transactionSync<T>(action: () => T, flags?: number): T;
  getStats(): unknown;
  /** Ends the current read snapshot, so the next read sees every commit made so far. */
  resetReadTxn(): void;
  close(): Promise<void>;
}

interface Meta {
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
}

// The records database hands values to this decoder in lmdb-js's reusable read buffer, without
// the copy its 'binary' encoding makes; the size arrives separately because the buffer is larger
// than the value. Callers copy what they keep before the next read.
let lastValueSize = 0;
const rawValues = {
  encode(value: Buffer): Buffer {
    return value;
  },
  decode(bytes: Buffer, size: number): Buffer {
    lastValueSize = size;
    return bytes;
  },
};

// Record keys are [pid u32 BE][offset u64 BE]; reading returns the offset alone, which saves
// slicing a key buffer per record.
const offsetKeys = {
  writeKey(key: Buffer, target: Buffer, start: number): number {
    return start + key.copy(target, start);
  },
  readKey(buf: Buffer, start: number): bigint {
    return buf.readBigUInt64BE(start + 4);
  },
};

function freshMeta(topicId: string): Meta {
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
  };
}

function pidKey(pid: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(pid, 0);
  return b;
}

function recordKey(pid: number, offset: bigint): Buffer {
  const b = Buffer.allocUnsafe(12);
  b.writeUInt32BE(pid, 0);
  b.writeBigUInt64BE(offset, 4);
  return b;
}

function pendingKey(pid: number, kind: number, offset: bigint): Buffer {
  const b = Buffer.allocUnsafe(13);
  b.writeUInt32BE(pid, 0);
  b[4] = kind;
  b.writeBigUInt64BE(offset, 5);
  return b;
}

function catalogKey(topic: string, partition: number): Buffer {
  return Buffer.from(`p/${topic}/${partition}`, 'utf8');
}

function garbageKey(pid: number): Buffer {
  const b = Buffer.allocUnsafe(5);
  b[0] = 0x67; // 'g'
  b.writeUInt32BE(pid, 1);
  return b;
}

const CATALOG_FORMAT = Buffer.from('format', 'utf8');
const CATALOG_NEXT_PID = Buffer.from('next-pid', 'utf8');
// Outside the 'p/' (partitions) and 'g' (garbage) ranges that are listed.
const CATALOG_PROBE = Buffer.from('space-probe', 'utf8');

/**
 * Writes the key-index key [pid][tag][key bytes or SHA-256] into target; returns its length.
 * source[start..start+length) holds the Kafka key.
 */
function writeIndexKey(
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

function encodeMeta(buf: Buffer, m: Meta): Buffer {
  buf.fill(0);
  buf[0] = 1;
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

function decodeMeta(buf: Buffer): Meta {
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
  };
}

/** Shared by a CacheStore and its partitions: one LMDB environment and the scratch buffers of its writers. */
interface Context {
  root: Root;
  catalog: Db<Buffer>;
  meta: Db<Buffer>;
  records: Db<bigint>;
  keys: Db<Buffer>;
  times: Db<Buffer>;
  pending: Db<Buffer>;
  closed: boolean;
  /** Opened with `reader`: every write refuses. */
  reader: boolean;
  running: Set<Promise<unknown>>;
  /** Inside CacheStore.transaction: how to restore in-memory state if the outer transaction fails. */
  group: Array<() => void> | null;
  allocatePid(): number;
  reclaim(): Promise<number>;
  // Every use below is synchronous, so one set of scratch buffers serves all partitions.
  recKey: Buffer;
  idxKey: Buffer;
  pendKey: Buffer;
  timeKey: Buffer;
  offsetValue: Buffer;
  prevValue: Buffer;
  metaBuf: Buffer;
  encodeBuf: Buffer;
}

/**
 * The cache of one topic partition. Writes are synchronous LMDB transactions, reads see the last
 * committed state; maintenance (expire, compact, truncateBefore, reset) runs in chunks of
 * transactions and may overlap appends and reads.
 */
export class PartitionStore {
  readonly topic: string;
  readonly partition: number;
  #ctx: Context;
  #pid: number;
  #meta: Meta;
  #sharedMeta: Meta | undefined;
  readonly #sharedReads = new Map<bigint, SharedRead>();
  /** The purge of this partition running now, if any: purges take turns (see #purgeBelow). */
  #purging: Promise<unknown> | undefined;

  /** @internal use CacheStore.partition */
  constructor(ctx: Context, topic: string, partition: number, pid: number, meta: Meta) {
    this.#ctx = ctx;
    this.topic = topic;
    this.partition = partition;
    this.#pid = pid;
    this.#meta = meta;
  }

  /** Offset of the next record to fetch from Kafka: the last cached offset + 1, or further. */
  get nextOffset(): bigint {
    return this.#meta.nextOffset;
  }

  get logStartOffset(): bigint {
    return this.#meta.logStartOffset;
  }

  get highWatermark(): bigint {
    return this.#meta.highWatermark;
  }

  get lastStableOffset(): bigint {
    return this.#meta.lastStableOffset;
  }

  /** Kafka topic id the cached records belong to; '' until bound. */
  get topicId(): string {
    return this.#meta.topicId;
  }

  stats(): PartitionStats {
    const m = this.#meta;
    return {
      records: m.records,
      bytes: m.bytes,
      firstOffset: m.firstOffset < 0n ? null : m.firstOffset,
      lastOffset: m.lastOffset < 0n ? null : m.lastOffset,
      logStartOffset: m.logStartOffset,
      nextOffset: m.nextOffset,
      highWatermark: m.highWatermark,
      lastStableOffset: m.lastStableOffset,
      topicId: m.topicId,
    };
  }

  /**
   * Stores records (ascending offsets, gaps allowed) and the watermarks in one transaction.
   * Offsets below nextOffset are skipped, so refetching after a crash is harmless.
   */
  append(records: readonly RecordInput[], options: AppendOptions = {}): AppendResult {
    this.#checkWritable();
    const c = this.#ctx;
    const pid = this.#pid;
    const m = this.#meta;
    const next = { ...m };
    let lastStored = m.nextOffset - 1n;
    let appended = 0;
    c.root.transactionSync(() => {
      const recKey = c.recKey;
      const idxKey = c.idxKey;
      const pendKey = c.pendKey;
      const offsetValue = c.offsetValue;
      recKey.writeUInt32BE(pid, 0);
      pendKey.writeUInt32BE(pid, 0);
      c.timeKey.writeUInt32BE(pid, 0);
      for (const r of records) {
        const offset = r.offset;
        if (offset <= lastStored) continue;
        const size = encodedSize(r);
        let buf = c.encodeBuf;
        if (buf.length < size) buf = c.encodeBuf = Buffer.allocUnsafeSlow(Math.max(size, buf.length * 2));
        encodeRecord(buf, 0, r);
        recKey.writeBigUInt64BE(offset, 4);
        c.records.putSync(recKey, buf.subarray(0, size));
        offsetValue.writeBigUInt64BE(offset, 0);
        const ts = r.timestamp;
        // Exact seek by timestamp needs an entry only where the running maximum grows: the first
        // record with timestamp >= t is always such a point.
        if (ts > next.maxTimestamp) {
          next.maxTimestamp = ts;
          c.timeKey.writeUIntBE(ts, 4, 6);
          c.times.putSync(c.timeKey, offsetValue);
        }
        if (r.control === true) {
          queue(c, pendKey, PENDING_GRAVE, offsetValue, offsetValue);
        } else if (r.aborted === true) {
          queue(c, pendKey, PENDING_DEAD, offsetValue, offsetValue);
        } else if (r.key !== null) {
          const kl = writeIndexKey(idxKey, pid, r.key, 0, r.key.length);
          const k = idxKey.subarray(0, kl);
          const prev = c.keys.getBinaryFast(k);
          if (prev !== undefined) {
            // The read buffer is reused by the next get; keep the 8 bytes.
            prev.copy(c.prevValue, 0, 0, 8);
            queue(c, pendKey, PENDING_DEAD, offsetValue, c.prevValue);
          }
          c.keys.putSync(k, offsetValue);
          if (r.value === null) queue(c, pendKey, PENDING_GRAVE, offsetValue, offsetValue);
        }
        if (next.firstOffset < 0n) next.firstOffset = offset;
        lastStored = offset;
        next.bytes += size;
        next.records++;
        appended++;
      }
      if (appended > 0) {
        next.lastOffset = lastStored;
        next.nextOffset = lastStored + 1n;
      }
      if (options.nextOffset !== undefined && options.nextOffset > next.nextOffset)
        next.nextOffset = options.nextOffset;
      if (options.highWatermark !== undefined) next.highWatermark = options.highWatermark;
      if (options.lastStableOffset !== undefined) next.lastStableOffset = options.lastStableOffset;
      this.#putMeta(pid, next);
    }, TXN_FLAGS);
    this.#commit(next);
    return { appended, nextOffset: next.nextOffset };
  }

  /**
   * True when append([], options) would store nothing new: the fetch results that come back
   * empty while a partition is idle, each of which would otherwise cost a commit (an fsync).
   */
  isCurrent(options: AppendOptions): boolean {
    const m = this.#meta;
    return (
      (options.nextOffset === undefined || options.nextOffset <= m.nextOffset) &&
      (options.highWatermark === undefined || options.highWatermark === m.highWatermark) &&
      (options.lastStableOffset === undefined || options.lastStableOffset === m.lastStableOffset)
    );
  }

  /** Records the broker's watermarks without appending. */
  setWatermarks(options: AppendOptions): void {
    this.append([], options);
  }

  /**
   * Up to maxRecords records from fromOffset on (from the log start when fromOffset is below it).
   * Each record's key, value and headers are views into one buffer per call: lmdb-js exposes map
   * memory only through a reusable buffer that the next read overwrites, so every record is copied
   * once, into that buffer, and nowhere else.
   */
  read(fromOffset: bigint, limits: ReadLimits = {}): ReadResult {
    this.#checkOpen();
    const m = this.#meta;
    const from = fromOffset < m.logStartOffset ? m.logStartOffset : fromOffset;
    if (from >= m.nextOffset) return { records: [], nextOffset: from };
    const maxRecords = limits.maxRecords ?? 500;
    const maxBytes = limits.maxBytes ?? 1024 * 1024;
    const out: CachedRecord[] = [];
    if (m.records === 0 || maxRecords <= 0)
      return { records: out, nextOffset: m.records === 0 ? m.nextOffset : from };
    let arena = EMPTY;
    let pos = 0;
    let chunk = 16 * 1024;
    let total = 0;
    const range = {
      start: recordKey(this.#pid, from),
      end: recordKey(this.#pid, m.nextOffset),
      limit: maxRecords,
    };
    for (const { key: offset, value } of this.#ctx.records.getRange(range)) {
      const size = lastValueSize;
      if (out.length > 0 && total + size > maxBytes) break;
      if (pos + size > arena.length) {
        // Fresh chunks rather than one buffer sized up front: the total is unknown until the
        // scan ends, and a consumer keeping one record keeps its whole chunk alive. A reader at
        // the head asks for the one or two records just appended, so a chunk is no larger than
        // what is left to read at this record's size.
        const left = Math.min(maxRecords - out.length, Number(m.nextOffset - offset));
        arena = Buffer.allocUnsafeSlow(Math.max(size, Math.min(chunk, size * left)));
        chunk = Math.min(chunk * 2, 1024 * 1024);
        pos = 0;
      }
      value.copy(arena, pos, 0, size);
      out.push(decodeRecord(arena, pos, pos + size, offset));
      pos += size;
      total += size;
    }
    const last = out[out.length - 1];
    return { records: out, nextOffset: last === undefined ? m.nextOffset : last.offset + 1n };
  }

  /**
   * read(), with the result shared among callers asking for the same records of the same
   * committed state: the readers following a partition's head all ask for what one append
   * brought, and one decoded copy serves them all. Every commit replaces the partition's meta, so
   * a result is only reused while nothing was written or deleted since, and only while some reader
   * still holds its records. Callers must not modify what they get.
   */
  readShared(fromOffset: bigint, limits: Required<ReadLimits>): SharedReadResult {
    this.#checkOpen();
    const meta = this.#meta;
    if (this.#sharedMeta !== meta) {
      this.#sharedMeta = meta;
      this.#sharedReads.clear();
    }
    const found = this.#sharedReads.get(fromOffset);
    if (found !== undefined && found.maxRecords === limits.maxRecords && found.maxBytes === limits.maxBytes) {
      const records = found.records.deref();
      if (records !== undefined) return { records, nextOffset: found.nextOffset };
    }
    const result = this.read(fromOffset, limits);
    if (this.#sharedReads.size >= SHARED_READS) this.#sharedReads.clear();
    this.#sharedReads.set(fromOffset, {
      maxRecords: limits.maxRecords,
      maxBytes: limits.maxBytes,
      nextOffset: result.nextOffset,
      records: new WeakRef(result.records),
    });
    return result;
  }

  /** The first stored offset at or after offset (compaction leaves holes), or null past the end. */
  offsetAtOrAfter(offset: bigint): bigint | null {
    this.#checkOpen();
    const m = this.#meta;
    const from = offset < m.logStartOffset ? m.logStartOffset : offset;
    if (from >= m.nextOffset) return null;
    for (const o of this.#ctx.records.getKeys({
      start: recordKey(this.#pid, from),
      end: recordKey(this.#pid, m.nextOffset),
      limit: 1,
    })) {
      return o;
    }
    return null;
  }

  /**
   * The first stored offset whose record has timestamp >= timestamp (ListOffsets semantics), or
   * null when there is none. Records removed by compaction are skipped to the next stored one.
   */
  offsetForTimestamp(timestamp: number): bigint | null {
    this.#checkOpen();
    const start = Buffer.allocUnsafe(10);
    start.writeUInt32BE(this.#pid, 0);
    start.writeUIntBE(Math.max(0, Math.min(timestamp, 2 ** 48 - 1)), 4, 6);
    for (const { value } of this.#ctx.times.getRange({ start, end: pidKey(this.#pid + 1), limit: 1 })) {
      return this.offsetAtOrAfter(value.readBigUInt64BE(0));
    }
    return null;
  }

  /**
   * The record stored at exactly this offset, or undefined when there is none (below the log
   * start, past the end, or removed by compaction). One point read: a range scan for a single
   * record would cost an iterator and an arena sized for what follows it. Its buffers are the
   * caller's.
   */
  recordAt(offset: bigint): CachedRecord | undefined {
    this.#checkOpen();
    const m = this.#meta;
    if (offset < m.logStartOffset || offset >= m.nextOffset) return undefined;
    const shared = this.#ctx.records.getBinaryFast(recordKey(this.#pid, offset));
    if (shared === undefined) return undefined;
    // lmdb-js's read buffer is overwritten by the next read: the record gets a copy of its own.
    const own = Buffer.allocUnsafe(shared.length);
    shared.copy(own, 0, 0, shared.length);
    return decodeRecord(own, 0, own.length, offset);
  }

  /** Offset of the newest committed record with this key, or null (never seen, expired, or deleted by a tombstone's removal). */
  latestOffsetOf(key: Buffer): bigint | null {
    this.#checkOpen();
    const c = this.#ctx;
    const kl = writeIndexKey(c.idxKey, this.#pid, key, 0, key.length);
    const v = c.keys.getBinaryFast(c.idxKey.subarray(0, kl));
    return v === undefined ? null : v.readBigUInt64BE(0);
  }

  /** True when offset holds the newest record with this key: the conflation test. */
  isLatestForKey(offset: bigint, key: Buffer): boolean {
    return this.latestOffsetOf(key) === offset;
  }

  /**
   * Deletes the head in granules emulating the broker's segments: walking from the log start, a
   * granule closes before the record that would take it past segmentBytes, or whose timestamp is
   * more than segmentMs after the granule's first. A closed granule goes when its newest timestamp
   * is older than retentionMs, or when the rest still holds retentionBytes; the open last granule
   * goes only by time. The log start moves to the first record kept.
   */
  expire(options: ExpireOptions): Promise<MaintenanceResult> {
    return this.#track(this.#expire(options));
  }

  /**
   * Removes records superseded by a newer record with the same key and aborted records once older
   * than minCompactionLagMs, and tombstones and transaction markers once older than
   * max(deleteRetentionMs, minCompactionLagMs) (a tombstone still the newest for its key takes its
   * key-index entry with it). Work is queued at append, so a run costs the records it removes.
   */
  compact(options: CompactOptions): Promise<CompactResult> {
    return this.#track(this.#compact(options));
  }

  /**
   * Where a head of at least `bytes` encoded bytes ends, scanning at most maxRecords records from
   * the log start: the offset to truncate before to drop that head (or as much of it as the scan
   * covered). The log start when the partition holds nothing. For evicting by size.
   */
  headEnd(bytes: number, maxRecords = CHUNK): bigint {
    this.#checkOpen();
    const m = this.#meta;
    let end = m.logStartOffset;
    if (m.records === 0 || maxRecords <= 0) return end;
    let total = 0;
    const range = {
      start: recordKey(this.#pid, m.logStartOffset),
      end: recordKey(this.#pid, m.nextOffset),
      limit: maxRecords,
    };
    for (const { key: offset } of this.#ctx.records.getRange(range)) {
      total += lastValueSize;
      end = offset + 1n;
      if (total >= bytes) break;
    }
    return end;
  }

  /**
   * Drops every record below offset (the broker's log start moved past it, deleteRecords, or
   * eviction). onRemoved hears of each chunk of deletes as it commits, before any other code runs:
   * a counter kept with it never lags what the store shows, although the whole call spans turns
   * of the event loop.
   */
  truncateBefore(offset: bigint, onRemoved?: RemovalListener): Promise<MaintenanceResult> {
    return this.#track(this.#truncateBefore(offset, onRemoved));
  }

  /**
   * Empties the partition for a recreated topic: offsets restart at 0 under the new topic id.
   * The switch is one transaction; the old records are reclaimed afterwards (and after a restart
   * by CacheStore.reclaim if this process dies first).
   */
  reset(topicId: string): Promise<void> {
    return this.#track(this.#reset(topicId));
  }

  /**
   * Remembers the topic id on first use; false when the cache holds another topic's records
   * under this name, which calls for reset(topicId).
   */
  bindTopicId(topicId: string): boolean {
    this.#checkWritable();
    const m = this.#meta;
    if (m.topicId === topicId) return true;
    if (m.topicId !== '') return false;
    if (Buffer.byteLength(topicId, 'utf8') > TOPIC_ID_MAX)
      throw new Error(`topic id longer than ${TOPIC_ID_MAX} bytes`);
    const next = { ...m, topicId };
    this.#ctx.root.transactionSync(() => this.#putMeta(this.#pid, next), TXN_FLAGS);
    this.#commit(next);
    return true;
  }

  #checkOpen(): void {
    if (this.#ctx.closed) throw new Error('cache store is closed');
  }

  #checkWritable(): void {
    this.#checkOpen();
    if (this.#ctx.reader) throw new Error('cache store is open for reading only');
  }

  /**
   * Re-reads this partition's metadata (and its key range, which a reset moves) as committed by
   * the writing thread; for stores opened with `reader`, after `CacheStore.refresh()`.
   */
  reload(): void {
    this.#checkOpen();
    const c = this.#ctx;
    const v = c.catalog.getBinaryFast(catalogKey(this.topic, this.partition));
    if (v === undefined) return;
    const pid = v.readUInt32BE(0);
    const mv = c.meta.getBinaryFast(pidKey(pid));
    if (mv === undefined) return;
    this.#pid = pid;
    this.#meta = decodeMeta(mv);
  }

  // Inside CacheStore.transaction the write above was a child transaction that the outer one may
  // still roll back, taking this state change with it.
  #commit(meta: Meta, pid = this.#pid): void {
    const before = this.#meta;
    const beforePid = this.#pid;
    this.#meta = meta;
    this.#pid = pid;
    this.#ctx.group?.push(() => {
      this.#meta = before;
      this.#pid = beforePid;
    });
  }

  #checkMaintenance(): void {
    this.#checkWritable();
    if (this.#ctx.group !== null) throw new Error('maintenance cannot run inside CacheStore.transaction');
  }

  #putMeta(pid: number, m: Meta): void {
    const c = this.#ctx;
    c.meta.putSync(pidKey(pid), encodeMeta(c.metaBuf, m));
  }

  #track<T>(p: Promise<T>): Promise<T> {
    const running = this.#ctx.running;
    running.add(p);
    const done = (): void => {
      running.delete(p);
    };
    p.then(done, done);
    return p;
  }

  /** Re-reads the stored offset bounds of a partition inside the current write transaction. */
  #refreshBounds(pid: number, m: Meta): void {
    const c = this.#ctx;
    const lo = recordKey(pid, 0n);
    const hi = pidKey(pid + 1);
    m.firstOffset = -1n;
    m.lastOffset = -1n;
    for (const o of c.records.getKeys({ start: lo, end: hi, limit: 1 })) m.firstOffset = o;
    for (const o of c.records.getKeys({ start: hi, end: pidKey(pid), limit: 1, reverse: true }))
      m.lastOffset = o;
  }

  /**
   * Deletes records (and their index entries) below limit, one chunk per transaction. Purges of
   * one partition take turns: a second purge started while the first waits between its chunks
   * would otherwise delete the rest of the first's records and report them as its own, leaving
   * the first to report less than its log start move dropped (as little as nothing).
   */
  async #purgeBelow(limit: bigint, onRemoved?: RemovalListener): Promise<{ records: number; bytes: number }> {
    // No await when no purge runs, so that a caller's first chunk commits in its own turn.
    while (this.#purging !== undefined) await this.#purging.then(ignore, ignore);
    const run = this.#purgeChunks(limit, onRemoved);
    this.#purging = run;
    try {
      return await run;
    } finally {
      if (this.#purging === run) this.#purging = undefined;
    }
  }

  async #purgeChunks(
    limit: bigint,
    onRemoved?: RemovalListener,
  ): Promise<{ records: number; bytes: number }> {
    const c = this.#ctx;
    let records = 0;
    let bytes = 0;
    const pid = this.#pid;
    for (;;) {
      if (c.closed || pid !== this.#pid) break;
      let more = false;
      let chunkRecords = 0;
      let chunkBytes = 0;
      const next = { ...this.#meta };
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
            const ik = Buffer.allocUnsafe(5 + Math.min(keyLength, RAW_KEY_MAX + 32));
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
        if (doomed.length > 0) this.#refreshBounds(pid, next);
        if (removed > 0) this.#putMeta(pid, next);
        more = removed > 0;
      }, TXN_FLAGS);
      if (pid === this.#pid) this.#commit(next);
      records += chunkRecords;
      bytes += chunkBytes;
      if (chunkRecords > 0) onRemoved?.(chunkRecords, chunkBytes);
      if (!more) break;
      await nextTurn();
    }
    return { records, bytes };
  }

  #moveLogStart(offset: bigint): void {
    const m = this.#meta;
    if (offset <= m.logStartOffset) return;
    const next = { ...m, logStartOffset: offset };
    if (next.nextOffset < offset) next.nextOffset = offset;
    this.#ctx.root.transactionSync(() => this.#putMeta(this.#pid, next), TXN_FLAGS);
    this.#commit(next);
  }

  async #truncateBefore(offset: bigint, onRemoved?: RemovalListener): Promise<MaintenanceResult> {
    this.#checkMaintenance();
    this.#moveLogStart(offset);
    const r = await this.#purgeBelow(this.#meta.logStartOffset, onRemoved);
    return { removedRecords: r.records, removedBytes: r.bytes, logStartOffset: this.#meta.logStartOffset };
  }

  async #expire(o: ExpireOptions): Promise<MaintenanceResult> {
    this.#checkMaintenance();
    const c = this.#ctx;
    const startPid = this.#pid;
    // Leftovers of a truncation interrupted by a crash.
    const m0 = this.#meta;
    const left =
      m0.firstOffset >= 0n && m0.firstOffset < m0.logStartOffset
        ? await this.#purgeBelow(m0.logStartOffset)
        : { records: 0, bytes: 0 };
    const retentionMs = o.retentionMs ?? -1;
    const retentionBytes = o.retentionBytes ?? -1;
    const segmentBytes = o.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    const segmentMs = o.segmentMs ?? DEFAULT_SEGMENT_MS;
    const now = o.now ?? Date.now();
    let deleteEnd = -1n;
    if (retentionMs >= 0 || retentionBytes >= 0) {
      let remaining = this.#meta.bytes;
      let gBytes = 0;
      let gFirstTs = 0;
      let gMaxTs = -1;
      let gOpen = false;
      let scanFrom = this.#meta.logStartOffset;
      let stopped = false;
      const expired = (maxTs: number): boolean => retentionMs >= 0 && now - maxTs > retentionMs;
      scan: while (!c.closed && this.#pid === startPid) {
        const pid = this.#pid;
        const m = this.#meta;
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
      if (this.#pid !== startPid) deleteEnd = -1n;
      else if (!stopped && !c.closed && gOpen && expired(gMaxTs)) deleteEnd = this.#meta.nextOffset;
    }
    let removed = left;
    if (deleteEnd > this.#meta.logStartOffset) {
      this.#moveLogStart(deleteEnd);
      const r = await this.#purgeBelow(this.#meta.logStartOffset);
      removed = { records: left.records + r.records, bytes: left.bytes + r.bytes };
    }
    return {
      removedRecords: removed.records,
      removedBytes: removed.bytes,
      logStartOffset: this.#meta.logStartOffset,
    };
  }

  async #compact(o: CompactOptions): Promise<CompactResult> {
    this.#checkMaintenance();
    const c = this.#ctx;
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
    const startPid = this.#pid;
    for (const kind of [PENDING_DEAD, PENDING_GRAVE]) {
      const lag = kind === PENDING_DEAD ? minLag : graveLag;
      let done = false;
      let from = 0n;
      while (!done && !c.closed && this.#pid === startPid) {
        const pid = startPid;
        const next = { ...this.#meta };
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
          if (boundsMoved) this.#refreshBounds(pid, next);
          if (changed) this.#putMeta(pid, next);
        }, TXN_FLAGS);
        if (pid === this.#pid) this.#commit(next);
        if (!done) await nextTurn();
      }
    }
    if (nextDueAt !== null && maxLag < Number.POSITIVE_INFINITY) due(now + maxLag);
    return { removedRecords, removedBytes, logStartOffset: this.#meta.logStartOffset, nextDueAt };
  }

  async #reset(topicId: string): Promise<void> {
    this.#checkMaintenance();
    if (Buffer.byteLength(topicId, 'utf8') > TOPIC_ID_MAX)
      throw new Error(`topic id longer than ${TOPIC_ID_MAX} bytes`);
    const c = this.#ctx;
    const old = this.#pid;
    const fresh = freshMeta(topicId);
    let pid = 0;
    c.root.transactionSync(() => {
      pid = c.allocatePid();
      const pk = Buffer.allocUnsafe(4);
      pk.writeUInt32BE(pid, 0);
      c.catalog.putSync(catalogKey(this.topic, this.partition), pk);
      c.catalog.putSync(garbageKey(old), EMPTY);
      this.#putMeta(pid, fresh);
    }, TXN_FLAGS);
    this.#commit(fresh, pid);
    await c.reclaim();
  }
}

function ignore(): void {}

function queue(c: Context, pendKey: Buffer, kind: number, at: Buffer, target: Buffer): void {
  pendKey[4] = kind;
  at.copy(pendKey, 5, 0, 8);
  c.pending.putSync(pendKey, target);
}

/**
 * One LMDB environment under a directory, holding every partition a cache_server binding caches.
 * One process owns a directory at a time: partition metadata is kept in memory between writes.
 * Other threads of that process may open it with `reader` to read what the writing thread commits.
 */
export class CacheStore {
  readonly path: string;
  #ctx: Context;
  #partitions = new Map<string, PartitionStore>();
  #writeFailure: Error | undefined;

  private constructor(path: string, ctx: Context) {
    this.path = path;
    this.#ctx = ctx;
  }

  static open(path: string, options: CacheStoreOptions = {}): CacheStore {
    const durability = options.durability ?? 'sync';
    const reader = options.reader === true;
    const root = open({
      path,
      maxDbs: 8,
      encoding: 'binary',
      mapSize: options.mapSize ?? 1024 * 1024 * 1024,
      overlappingSync: durability === 'overlapped',
      noSync: durability === 'none',
    }) as unknown as Root;
    const binary = (name: string): Db<Buffer> =>
      root.openDB({ name, encoding: 'binary', keyEncoding: 'binary' }) as Db<Buffer>;
    const ctx: Context = {
      root,
      catalog: binary('catalog'),
      meta: binary('meta'),
      records: root.openDB({ name: 'records', encoder: rawValues, keyEncoder: offsetKeys }) as Db<bigint>,
      keys: binary('keys'),
      times: binary('times'),
      pending: binary('pending'),
      closed: false,
      reader,
      running: new Set(),
      group: null,
      allocatePid(): number {
        const v = ctx.catalog.getBinaryFast(CATALOG_NEXT_PID);
        const pid = v === undefined ? 1 : v.readUInt32BE(0);
        const b = Buffer.allocUnsafe(4);
        b.writeUInt32BE(pid + 1, 0);
        ctx.catalog.putSync(CATALOG_NEXT_PID, b);
        return pid;
      },
      reclaim: () => Promise.resolve(0),
      recKey: Buffer.alloc(12),
      idxKey: Buffer.alloc(5 + RAW_KEY_MAX + 32),
      pendKey: Buffer.alloc(13),
      timeKey: Buffer.alloc(10),
      offsetValue: Buffer.alloc(8),
      prevValue: Buffer.alloc(8),
      metaBuf: Buffer.alloc(META_SIZE),
      encodeBuf: Buffer.allocUnsafeSlow(64 * 1024),
    };
    const format = ctx.catalog.getBinaryFast(CATALOG_FORMAT);
    if (format === undefined && reader) {
      void root.close();
      throw new Error(`cache store ${path} has not been created by its writer yet`);
    }
    if (format === undefined) {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(FORMAT_VERSION, 0);
      root.transactionSync(() => ctx.catalog.putSync(CATALOG_FORMAT, b), TXN_FLAGS);
    } else if (format.readUInt32BE(0) !== FORMAT_VERSION) {
      const found = format.readUInt32BE(0);
      void root.close();
      throw new Error(`cache store ${path} has format ${found}, this build reads ${FORMAT_VERSION}`);
    }
    const store = new CacheStore(path, ctx);
    ctx.reclaim = () => store.reclaim();
    return store;
  }

  /** The store of one topic partition, created empty on first use. */
  partition(topic: string, partition: number): PartitionStore {
    const name = `${topic}/${partition}`;
    const known = this.#partitions.get(name);
    if (known !== undefined) return known;
    const c = this.#ctx;
    if (c.closed) throw new Error('cache store is closed');
    const ck = catalogKey(topic, partition);
    let pid = 0;
    let meta: Meta | undefined;
    const v = c.catalog.getBinaryFast(ck);
    if (v !== undefined) {
      pid = v.readUInt32BE(0);
      const mv = c.meta.getBinaryFast(pidKey(pid));
      if (mv !== undefined) meta = decodeMeta(mv);
    }
    if (meta === undefined && c.reader) {
      // Not fed yet: an empty view until reload() finds what the writer created.
      const empty = new PartitionStore(c, topic, partition, 0, freshMeta(''));
      this.#partitions.set(name, empty);
      return empty;
    }
    if (meta === undefined) {
      const fresh = freshMeta('');
      c.root.transactionSync(() => {
        if (pid === 0) {
          pid = c.allocatePid();
          const pk = Buffer.allocUnsafe(4);
          pk.writeUInt32BE(pid, 0);
          c.catalog.putSync(ck, pk);
        }
        c.meta.putSync(pidKey(pid), encodeMeta(c.metaBuf, fresh));
      }, TXN_FLAGS);
      meta = fresh;
    }
    const p = new PartitionStore(c, topic, partition, pid, meta);
    this.#partitions.set(name, p);
    return p;
  }

  /** Every topic partition the store has metadata for. */
  partitions(): Array<{ topic: string; partition: number }> {
    const out: Array<{ topic: string; partition: number }> = [];
    const start = Buffer.from('p/', 'utf8');
    const end = Buffer.from('p0', 'utf8'); // '0' follows '/'
    for (const key of this.#ctx.catalog.getKeys({ start, end })) {
      const name = key.toString('utf8', 2);
      const cut = name.lastIndexOf('/');
      out.push({ topic: name.slice(0, cut), partition: Number(name.slice(cut + 1)) });
    }
    return out;
  }

  /**
   * Runs fn's appends, setWatermarks and bindTopicId calls, on any partitions, in one LMDB
   * transaction: one commit for a whole fetch response instead of one per partition batch. Each
   * call inside stays atomic on its own (a child transaction); if fn throws, nothing of it is
   * stored. fn must be synchronous, and maintenance cannot run inside.
   */
  transaction<T>(fn: () => T): T {
    const c = this.#ctx;
    if (c.closed) throw new Error('cache store is closed');
    if (c.reader) throw new Error('cache store is open for reading only');
    if (c.group !== null) return fn();
    const undo: Array<() => void> = [];
    c.group = undo;
    try {
      return c.root.transactionSync(() => {
        const result = fn();
        if (result instanceof Promise) throw new Error('CacheStore.transaction needs a synchronous function');
        // Thrown inside, so that LMDB aborts the transaction as it does a commit that fails.
        if (this.#writeFailure !== undefined) throw this.#writeFailure;
        return result;
      }, TXN_FLAGS);
    } catch (error) {
      for (const restore of undo.reverse()) restore();
      throw error;
    } finally {
      c.group = null;
    }
  }

  /**
   * Commits a write that changes nothing (a key put and removed), to learn whether the
   * environment takes writes again after one failed for want of space. Throws what the commit
   * throws.
   */
  probeWrite(): void {
    const c = this.#ctx;
    if (c.closed) throw new Error('cache store is closed');
    c.root.transactionSync(() => {
      c.catalog.putSync(CATALOG_PROBE, CATALOG_PROBE);
      c.catalog.removeSync(CATALOG_PROBE);
      if (this.#writeFailure !== undefined) throw this.#writeFailure;
    }, TXN_FLAGS);
  }

  /**
   * A seam for tests where no small filesystem can be mounted: while an error is set, every
   * `transaction()` and `probeWrite()` fails with it instead of committing, as a full disk would
   * fail them. Maintenance and single-partition writes are not affected. `undefined` clears it.
   */
  simulateWriteFailure(error: Error | undefined): void {
    this.#writeFailure = error;
  }

  /** Deletes the data left by reset partitions, a chunk per transaction; returns the entries removed. */
  async reclaim(): Promise<number> {
    const c = this.#ctx;
    if (c.reader) throw new Error('cache store is open for reading only');
    let removed = 0;
    for (;;) {
      if (c.closed) return removed;
      const pids: number[] = [];
      for (const key of c.catalog.getKeys({ start: Buffer.from('g'), end: Buffer.from('h'), limit: 16 })) {
        if (key.length === 5) pids.push(key.readUInt32BE(1));
      }
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
              c.meta.removeSync(lo);
              c.catalog.removeSync(garbageKey(pid));
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

  stats(): CacheStoreStats {
    let records = 0;
    let bytes = 0;
    let partitions = 0;
    for (const { topic, partition } of this.partitions()) {
      const s = this.partition(topic, partition).stats();
      records += s.records;
      bytes += s.bytes;
      partitions++;
    }
    const env = this.#ctx.root.getStats() as { lastPageNumber?: number; pageSize?: number };
    const fileBytes = ((env.lastPageNumber ?? 0) + 1) * (env.pageSize ?? 4096);
    return { partitions, records, bytes, fileBytes };
  }

  /**
   * Ends the read snapshot this thread holds, so that reads and `PartitionStore.reload()` after
   * it see every commit the writing thread has made.
   */
  refresh(): void {
    if (this.#ctx.closed) return;
    this.#ctx.root.resetReadTxn();
  }

  /** Stops maintenance at its next chunk boundary, waits for it, and closes the environment. */
  async close(): Promise<void> {
    const c = this.#ctx;
    if (c.closed) return;
    c.closed = true;
    await Promise.allSettled([...c.running]);
    await c.root.close();
  }
}
