import type { AppendOptions, AppendResult, CacheStore, PartitionStore, RecordInput } from '../cache/index.ts';
import { IngestPausedError } from './errors.ts';

/** The part of IngestGate the coalescer drives. */
export interface IngestControl {
  readonly paused: boolean;
  report(error: unknown): boolean;
  committed(): void;
}

interface Pending {
  readonly store: PartitionStore;
  readonly records: readonly RecordInput[];
  readonly options: AppendOptions;
  readonly bytes: number;
  readonly count: number;
  resolve(result: AppendResult): void;
  reject(error: unknown): void;
}

/** Record overhead beyond key and value, so that many empty records still count. */
const RECORD_OVERHEAD = 32;

function sizeOf(records: readonly RecordInput[]): number {
  let bytes = 0;
  for (const r of records) bytes += RECORD_OVERHEAD + (r.key?.length ?? 0) + (r.value?.length ?? 0);
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
 * A commit that fails rejects every append it carried and is reported to the ingest gate, which
 * pauses ingest when the disk is full; while paused, appends are refused without touching the
 * store.
 */
export class CommitCoalescer {
  readonly #store: CacheStore;
  readonly #maxBytes: number;
  readonly #maxRecords: number;
  readonly #ingest: IngestControl | undefined;
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
    this.#maxRecords = maxRecords;
    this.#ingest = ingest;
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
      this.#queue.push({
        store,
        records,
        options,
        bytes: sizeOf(records),
        count: records.length,
        resolve,
        reject,
      });
      if (!this.#scheduled) {
        this.#scheduled = true;
        // setImmediate, not a microtask: it runs after the I/O callbacks of this turn, so every
        // fetch response already read off the sockets gets into the same commit.
        setImmediate(() => {
          this.#scheduled = false;
          this.#flushSome();
        });
      }
    });
  }

  /** Commits everything queued now; before the store closes. */
  flush(): void {
    while (this.#queue.length > 0) this.#flushSome();
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
    // Bounded so that one commit neither holds the event loop nor grows its dirty pages without
    // limit; the first append always goes, however large.
    let take = 0;
    let bytes = 0;
    let count = 0;
    for (const p of this.#queue) {
      if (take > 0 && (bytes + p.bytes > this.#maxBytes || count + p.count > this.#maxRecords)) break;
      bytes += p.bytes;
      count += p.count;
      take++;
    }
    const batch = this.#queue.slice(0, take);
    this.#queue = this.#queue.slice(take);
    if (this.#queue.length > 0 && !this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        this.#flushSome();
      });
    }
    const outcomes: Array<{ ok: true; result: AppendResult } | { ok: false; error: unknown }> = [];
    try {
      this.#store.transaction(() => {
        for (const p of batch) {
          try {
            outcomes.push({ ok: true, result: p.store.append(p.records, p.options) });
          } catch (error) {
            outcomes.push({ ok: false, error });
          }
        }
      });
    } catch (error) {
      this.#ingest?.report(error);
      for (const p of batch) p.reject(error);
      return;
    }
    this.commits++;
    this.appends += batch.length;
    this.#ingest?.committed();
    batch.forEach((p, i) => {
      const outcome = outcomes[i];
      if (outcome === undefined) p.reject(new Error('append was not run'));
      else if (outcome.ok) p.resolve(outcome.result);
      else {
        this.#ingest?.report(outcome.error);
        p.reject(outcome.error);
      }
    });
  }
}
