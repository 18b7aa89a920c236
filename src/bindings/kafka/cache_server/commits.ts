import type { AppendOptions, AppendResult, CacheStore, PartitionStore, RecordInput } from '../cache/index.ts';
import { IngestPausedError } from './errors.ts';
import type { StorageErrorKind } from './storage-errors.ts';

/** The part of IngestGate the coalescer drives. */
export interface IngestControl {
  readonly paused: boolean;
  /** A commit of `bytes` failed: counts it if it is a storage failure, and says which kind. */
  failed(error: unknown, bytes: number): StorageErrorKind | undefined;
  /** Pauses ingest: not even a commit of `wanted` bytes, the least that makes progress, fits. */
  pause(error: unknown, wanted: number): void;
  committed(): void;
}

interface Pending {
  readonly store: PartitionStore;
  /** What is left to commit: an append larger than a commit may take is committed in parts. */
  records: readonly RecordInput[];
  readonly options: AppendOptions;
  bytes: number;
  /** Records stored by the parts committed so far. */
  appended: number;
  resolve(result: AppendResult): void;
  reject(error: unknown): void;
}

/** Of one pending append, the first `records` records (all of them, or a part) for one commit. */
interface Take {
  readonly pending: Pending;
  readonly records: number;
  readonly bytes: number;
}

/** Record overhead beyond key and value, so that many empty records still count. */
const RECORD_OVERHEAD = 32;

function recordSize(r: RecordInput): number {
  return RECORD_OVERHEAD + (r.key?.length ?? 0) + (r.value?.length ?? 0);
}

function sizeOf(records: readonly RecordInput[]): number {
  let bytes = 0;
  for (const r of records) bytes += recordSize(r);
  return bytes;
}

/**
 * Lets appends to many partitions share one commit. With durability 'sync' every commit is an
 * fsync on the event loop's thread, so a commit per partition per fetch result makes the disk,
 * not the broker, set the ingest rate. Appends queued while the event loop is busy (including
 * during the previous commit, which is synchronous) are committed together on the next turn.
 *
 * A promise resolves only after its append is committed, so whatever its caller announces is
 * durable; each append stays atomic on its own, and one that fails is undone alone. A caller
 * awaits its append before queueing the next for the same partition, which keeps per-partition
 * order and passes backpressure through.
 *
 * A commit takes whole appends while they fit its bounds; an append that alone does not is
 * committed in parts, record by record as far as they fit (at least one), its watermarks with the
 * last. When a commit fails for want of space, nothing of it is stored and the same appends are
 * tried again in a commit half its size, down to a single record: a disk with a little room left
 * takes what fits rather than nothing. Only when a single record does not fit is ingest paused
 * (the gate then probes for room for it), and while paused, appends are refused without touching
 * the store. Commits that go through double the bound again, up to its maximum.
 */
export class CommitCoalescer {
  readonly #store: CacheStore;
  readonly #maxBytes: number;
  readonly #maxRecords: number;
  readonly #ingest: IngestControl | undefined;
  /** Bytes a commit may take now: maxBytes, or less after commits failed for want of space. */
  #limit: number;
  #queue: Pending[] = [];
  #scheduled = false;
  /** Commits and appends so far, for tests and diagnostics. */
  commits = 0;
  appends = 0;

  constructor(
    store: CacheStore,
    maxBytes: number,
    ingest?: IngestControl,
    maxRecords = Number.POSITIVE_INFINITY,
  ) {
    this.#store = store;
    this.#maxBytes = maxBytes;
    this.#limit = maxBytes;
    this.#maxRecords = maxRecords;
    this.#ingest = ingest;
  }

  /** Bytes the next commit may take: below the maximum while the disk is short of space. */
  get limit(): number {
    return this.#limit;
  }

  append(
    store: PartitionStore,
    records: readonly RecordInput[],
    options: AppendOptions,
  ): Promise<AppendResult> {
    // Nothing to store: an idle partition's empty fetch results would each cost a commit, and
    // with durability 'sync' an fsync that holds the event loop (and every request) for ms.
    if (records.length === 0 && store.isCurrent(options))
      return Promise.resolve({ appended: 0, nextOffset: store.nextOffset });
    return new Promise<AppendResult>((resolve, reject) => {
      this.#queue.push({ store, records, options, bytes: sizeOf(records), appended: 0, resolve, reject });
      this.#schedule();
    });
  }

  /** Commits everything queued now; before the store closes. */
  flush(): void {
    while (this.#queue.length > 0) this.#flushSome();
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    // setImmediate, not a microtask: it runs after the I/O callbacks of this turn, so every
    // fetch response already read off the sockets gets into the same commit.
    setImmediate(() => {
      this.#scheduled = false;
      this.#flushSome();
    });
  }

  /**
   * What the next commit takes: whole appends while they fit, or when the first alone does not,
   * as many of its records as fit (at least one). Bounded so that one commit neither holds the
   * event loop nor grows its dirty pages without limit, and so that it fits the disk.
   */
  #select(): Take[] {
    const takes: Take[] = [];
    let bytes = 0;
    let count = 0;
    for (const p of this.#queue) {
      const n = p.records.length;
      if (bytes + p.bytes <= this.#limit && count + n <= this.#maxRecords) {
        takes.push({ pending: p, records: n, bytes: p.bytes });
        bytes += p.bytes;
        count += n;
        continue;
      }
      if (takes.length > 0) break;
      let part = 0;
      let partBytes = 0;
      for (const r of p.records) {
        const size = recordSize(r);
        if (part > 0 && (partBytes + size > this.#limit || part + 1 > this.#maxRecords)) break;
        partBytes += size;
        part++;
      }
      takes.push({ pending: p, records: part, bytes: partBytes });
      break;
    }
    return takes;
  }

  #flushSome(): void {
    if (this.#queue.length === 0) return;
    if (this.#ingest?.paused === true) {
      const refused = this.#queue;
      this.#queue = [];
      const error = new IngestPausedError();
      for (const p of refused) p.reject(error);
      return;
    }
    const takes = this.#select();
    let bytes = 0;
    let records = 0;
    for (const t of takes) {
      bytes += t.bytes;
      records += t.records;
    }
    const outcomes: Array<{ ok: true; result: AppendResult } | { ok: false; error: unknown }> = [];
    try {
      this.#store.transaction(() => {
        for (const t of takes) {
          const p = t.pending;
          const whole = t.records === p.records.length;
          try {
            const part = whole ? p.records : p.records.slice(0, t.records);
            outcomes.push({ ok: true, result: p.store.append(part, whole ? p.options : {}) });
          } catch (error) {
            outcomes.push({ ok: false, error });
          }
        }
      });
    } catch (error) {
      this.#failed(takes, error, bytes, records);
      return;
    }
    this.commits++;
    if (this.#limit < this.#maxBytes) this.#limit = Math.min(this.#maxBytes, this.#limit * 2);
    this.#ingest?.committed();
    // The takes are the head of the queue; only a part of a larger append (then the only take)
    // stays there, with what is left of it.
    const first = takes[0];
    const part = first !== undefined && first.records < first.pending.records.length;
    if (!part) this.#queue.splice(0, takes.length);
    takes.forEach((t, i) => {
      const p = t.pending;
      const outcome = outcomes[i];
      if (outcome === undefined || !outcome.ok) {
        const error = outcome === undefined ? new Error('append was not run') : outcome.error;
        if (part) this.#queue.shift();
        if (this.#ingest?.failed(error, t.bytes) === 'no_space') this.#ingest.pause(error, t.bytes);
        p.reject(error);
        return;
      }
      p.appended += outcome.result.appended;
      if (part) {
        p.records = p.records.slice(t.records);
        p.bytes -= t.bytes;
        return;
      }
      this.appends++;
      p.resolve({ appended: p.appended, nextOffset: outcome.result.nextOffset });
    });
    if (this.#queue.length > 0) this.#schedule();
  }

  /** A commit failed: nothing of it is stored. Smaller commits are tried while the disk has some room. */
  #failed(takes: readonly Take[], error: unknown, bytes: number, records: number): void {
    const kind = this.#ingest?.failed(error, bytes);
    if (kind === 'no_space' && records > 1) {
      this.#limit = Math.max(1, Math.floor(bytes / 2));
      this.#schedule();
      return;
    }
    if (kind === 'no_space') {
      // Everything queued was refused with it: the appends a larger commit carried before it
      // shrank, and those that came since.
      this.#ingest?.pause(error, bytes);
      const refused = this.#queue;
      this.#queue = [];
      for (const p of refused) p.reject(error);
      return;
    }
    this.#queue.splice(0, takes.length);
    for (const t of takes) t.pending.reject(error);
    if (this.#queue.length > 0) this.#schedule();
  }
}
