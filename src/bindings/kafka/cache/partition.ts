// The cache of one topic partition: appends, reads and lookups here; maintenance in purge.ts,
// expiry.ts, compaction.ts and reset.ts. Layout, encoding and the reasons for them are in ./README.md.

import { partitionPid } from './catalog.ts';
import { decodeRecord, encodeRecord, encodedSize } from './codec.ts';
import type { CachedRecord, RecordInput } from './codec.ts';
import { compact, queue, type CompactOptions, type CompactResult } from './compaction.ts';
import { CHUNK, TXN_FLAGS, checkOpen, checkWritable, lastValueSize, track, type Context } from './context.ts';
import { expire, type ExpireOptions } from './expiry.ts';
import { PENDING_DEAD, PENDING_GRAVE, pidKey, recordKey, timeSeekKey, writeIndexKey } from './layout.ts';
import { checkTopicId, freshMeta, getMeta, putMeta, type Meta } from './meta.ts';
import { NO_PID, PartitionState } from './partition-state.ts';
import { truncateBefore, type MaintenanceResult, type RemovalListener } from './purge.ts';
import { drop, hold, reset } from './reset.ts';

const EMPTY = Buffer.alloc(0);

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

/**
 * The cache of one topic partition. Writes are synchronous LMDB transactions, reads see the last
 * committed state; maintenance (expire, compact, truncateBefore, reset) runs in chunks of
 * transactions and may overlap appends and reads.
 */
export class PartitionStore {
  readonly topic: string;
  readonly partition: number;
  readonly #state: PartitionState;
  #sharedMeta: Meta | undefined;
  readonly #sharedReads = new Map<bigint, SharedRead>();

  /** @internal use CacheStore.partition */
  constructor(ctx: Context, topic: string, partition: number, pid: number, meta: Meta) {
    this.topic = topic;
    this.partition = partition;
    this.#state = new PartitionState(ctx, topic, partition, pid, meta);
  }

  /** Offset of the next record to fetch from Kafka: the last cached offset + 1, or further. */
  get nextOffset(): bigint {
    return this.#state.meta.nextOffset;
  }

  get logStartOffset(): bigint {
    return this.#state.meta.logStartOffset;
  }

  get highWatermark(): bigint {
    return this.#state.meta.highWatermark;
  }

  get lastStableOffset(): bigint {
    return this.#state.meta.lastStableOffset;
  }

  /** Kafka topic id the cached records belong to; '' until bound. */
  get topicId(): string {
    return this.#state.meta.topicId;
  }

  stats(): PartitionStats {
    const m = this.#state.meta;
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
    const s = this.#state;
    const c = s.ctx;
    checkWritable(c);
    hold(s);
    const pid = s.pid;
    const m = s.meta;
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
      putMeta(c, pid, next);
    }, TXN_FLAGS);
    s.commit(next);
    return { appended, nextOffset: next.nextOffset };
  }

  /**
   * True when append([], options) would store nothing new: the fetch results that come back
   * empty while a partition is idle, each of which would otherwise cost a commit (an fsync).
   */
  isCurrent(options: AppendOptions): boolean {
    const m = this.#state.meta;
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
    const s = this.#state;
    checkOpen(s.ctx);
    const m = s.meta;
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
      start: recordKey(s.pid, from),
      end: recordKey(s.pid, m.nextOffset),
      limit: maxRecords,
    };
    for (const { key: offset, value } of s.ctx.records.getRange(range)) {
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
    checkOpen(this.#state.ctx);
    const meta = this.#state.meta;
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
    const s = this.#state;
    checkOpen(s.ctx);
    const m = s.meta;
    const from = offset < m.logStartOffset ? m.logStartOffset : offset;
    if (from >= m.nextOffset) return null;
    for (const o of s.ctx.records.getKeys({
      start: recordKey(s.pid, from),
      end: recordKey(s.pid, m.nextOffset),
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
    const s = this.#state;
    checkOpen(s.ctx);
    const start = timeSeekKey(s.pid, timestamp);
    for (const { value } of s.ctx.times.getRange({ start, end: pidKey(s.pid + 1), limit: 1 })) {
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
    const s = this.#state;
    checkOpen(s.ctx);
    const m = s.meta;
    if (offset < m.logStartOffset || offset >= m.nextOffset) return undefined;
    const shared = s.ctx.records.getBinaryFast(recordKey(s.pid, offset));
    if (shared === undefined) return undefined;
    // lmdb-js's read buffer is overwritten by the next read: the record gets a copy of its own.
    const own = Buffer.allocUnsafe(shared.length);
    shared.copy(own, 0, 0, shared.length);
    return decodeRecord(own, 0, own.length, offset);
  }

  /** Offset of the newest committed record with this key, or null (never seen, expired, or deleted by a tombstone's removal). */
  latestOffsetOf(key: Buffer): bigint | null {
    const s = this.#state;
    const c = s.ctx;
    checkOpen(c);
    const kl = writeIndexKey(c.idxKey, s.pid, key, 0, key.length);
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
    if (this.dropped) return Promise.resolve(nothingRemoved(this.#state.meta.logStartOffset));
    return track(this.#state.ctx, expire(this.#state, options));
  }

  /**
   * Removes records superseded by a newer record with the same key and aborted records once older
   * than minCompactionLagMs, and tombstones and transaction markers once older than
   * max(deleteRetentionMs, minCompactionLagMs) (a tombstone still the newest for its key takes its
   * key-index entry with it). Work is queued at append, so a run costs the records it removes.
   */
  compact(options: CompactOptions): Promise<CompactResult> {
    if (this.dropped)
      return Promise.resolve({ ...nothingRemoved(this.#state.meta.logStartOffset), nextDueAt: null });
    return track(this.#state.ctx, compact(this.#state, options));
  }

  /**
   * Where a head of at least `bytes` encoded bytes ends, scanning at most maxRecords records from
   * the log start: the offset to truncate before to drop that head (or as much of it as the scan
   * covered). The log start when the partition holds nothing. For evicting by size.
   */
  headEnd(bytes: number, maxRecords = CHUNK): bigint {
    const s = this.#state;
    checkOpen(s.ctx);
    const m = s.meta;
    let end = m.logStartOffset;
    if (m.records === 0 || maxRecords <= 0) return end;
    let total = 0;
    const range = {
      start: recordKey(s.pid, m.logStartOffset),
      end: recordKey(s.pid, m.nextOffset),
      limit: maxRecords,
    };
    for (const { key: offset } of s.ctx.records.getRange(range)) {
      total += lastValueSize;
      end = offset + 1n;
      if (total >= bytes) break;
    }
    return end;
  }

  /**
   * Drops every record below offset because the source no longer holds them (the broker's log
   * start moved past it, deleteRecords). onRemoved hears of each chunk of deletes as it commits,
   * before any other code runs: a counter kept with it never lags what the store shows, although
   * the whole call spans turns of the event loop.
   */
  truncateBefore(offset: bigint, onRemoved?: RemovalListener): Promise<MaintenanceResult> {
    // A dropped partition has no head left to cut, and must not get a range for nothing.
    if (this.dropped) return Promise.resolve(nothingRemoved(this.#state.meta.logStartOffset));
    return track(this.#state.ctx, truncateBefore(this.#state, offset, onRemoved, false));
  }

  /**
   * Drops every record below offset to keep the cache within its byte budget, as truncateBefore
   * does, and marks the partition `evicted`: the source may still hold what was dropped.
   */
  evictBefore(offset: bigint, onRemoved?: RemovalListener): Promise<MaintenanceResult> {
    if (this.dropped) return Promise.resolve(nothingRemoved(this.#state.meta.logStartOffset));
    return track(this.#state.ctx, truncateBefore(this.#state, offset, onRemoved, true));
  }

  /**
   * True when records below the log start were evicted by the byte budget while the source may
   * still hold them: a read from the log start sees less than the topic holds. Cleared once the
   * source's log start reaches the cache's (sourceLogStart, truncateBefore) and by a reset.
   */
  get evicted(): boolean {
    return this.#state.meta.evicted;
  }

  /**
   * The source's log start as last heard (a fetch answer carries it). Once it has reached the
   * cache's, the source no longer holds what the budget evicted, and the mark goes.
   */
  sourceLogStart(offset: bigint): void {
    const s = this.#state;
    const m = s.meta;
    if (!m.evicted || offset < m.logStartOffset) return;
    checkWritable(s.ctx);
    const next = { ...m, evicted: false };
    s.ctx.root.transactionSync(() => putMeta(s.ctx, s.pid, next), TXN_FLAGS);
    s.commit(next);
  }

  /**
   * Empties the partition for a recreated topic: offsets restart at 0 under the new topic id.
   * The switch is one transaction; the old records are reclaimed afterwards (and after a restart
   * by CacheStore.reclaim if this process dies first).
   */
  reset(topicId: string): Promise<void> {
    return track(this.#state.ctx, reset(this.#state, topicId));
  }

  /**
   * Forgets the partition: its topic was deleted, or it is gone with its topic's old incarnation.
   * The catalog stops naming it in one transaction made before this returns, so that listings
   * (`CacheStore.partitions()`, status, metrics, maintenance) leave it out at once, and its reads
   * find nothing; the records are reclaimed afterwards (the promise), and after a restart by
   * CacheStore.reclaim if this process dies first. A later write (a feed of a partition of that
   * name again) gives it a fresh, empty range.
   */
  drop(): Promise<void> {
    return track(
      this.#state.ctx,
      drop(this.#state).then(() => undefined),
    );
  }

  /** True while the catalog does not name this partition: dropped, or not created by the writer yet. */
  get dropped(): boolean {
    return this.#state.pid === NO_PID;
  }

  /**
   * Remembers the topic id on first use; false when the cache holds another topic's records
   * under this name, which calls for reset(topicId).
   */
  bindTopicId(topicId: string): boolean {
    const s = this.#state;
    checkWritable(s.ctx);
    checkTopicId(topicId);
    hold(s);
    const m = s.meta;
    if (m.topicId === topicId) return true;
    if (m.topicId !== '') return false;
    const next = { ...m, topicId };
    s.ctx.root.transactionSync(() => putMeta(s.ctx, s.pid, next), TXN_FLAGS);
    s.commit(next);
    return true;
  }

  /**
   * Re-reads this partition's metadata (and its key range, which a reset moves) as committed by
   * the writing thread; for stores opened with `reader`, after `CacheStore.refresh()`.
   */
  reload(): void {
    const s = this.#state;
    checkOpen(s.ctx);
    const pid = partitionPid(s.ctx, this.topic, this.partition);
    if (pid === undefined) {
      // Dropped by the writer (or never created): nothing to read, rather than a range being reclaimed.
      if (s.pid !== NO_PID) {
        s.pid = NO_PID;
        s.meta = freshMeta('');
      }
      return;
    }
    const meta = getMeta(s.ctx, pid);
    if (meta === undefined) return;
    s.pid = pid;
    s.meta = meta;
  }
}

function nothingRemoved(logStartOffset: bigint): MaintenanceResult {
  return { removedRecords: 0, removedBytes: 0, logStartOffset };
}
