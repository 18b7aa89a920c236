import { setImmediate as nextTurn } from 'node:timers/promises';
import { KgateError } from '../../../engine/errors.ts';
import type { CachedHeader, CachedRecord, PartitionStore } from '../cache/index.ts';
import type { CacheServerApi, CachedTopic, DefaultOffset, TopicChange } from '../cache_server/api.ts';
import type { ProduceOptions } from '../client/index.ts';
import { compileFilters, type Filter, type FilterSet } from './filters.ts';
import { StagedMessage, type ProduceAck, type ProduceMessage, type StagedMessageInit } from './produce.ts';
import { knownPartitions, partitionEnd } from './positions.ts';
import { encodeRecord, viewRecord, type RecordViews } from './models.ts';
import { StagingBudget } from './staging.ts';
import { visibleEnd } from './up-to-now.ts';

export type Capabilities = 'fetch' | 'produce' | 'produce_and_fetch';
export type Isolation = 'read_committed' | 'read_uncommitted';

export interface OpenOptions {
  /** Default 'fetch'. */
  readonly capabilities?: Capabilities;
  readonly filters?: readonly Filter[];
  /**
   * Progress of an earlier stream (partition -> next offset) to resume from. Partitions it does
   * not name are read from their log start: they appeared after that progress was taken. It is
   * held to the topic: partitions the topic does not have are dropped, and an offset past a
   * partition's end starts at that end.
   */
  readonly partitions?: Readonly<Record<number, bigint | string>> | ReadonlyMap<number, bigint>;
  /** Default 'read_committed'. */
  readonly isolation?: Isolation;
  /** Where a stream with no progress starts on a topic that is not compacted; default the topic's. */
  readonly defaultOffset?: DefaultOffset;
  /** Aborts waiting for the topic's metadata. */
  readonly signal?: AbortSignal;
  /**
   * How long to wait for the topic's metadata (and, to produce only, its config) from Kafka; past
   * it open() rejects with a KafkaWaitError saying why. Unset: as long as it takes.
   */
  readonly timeoutMs?: number;
}

export interface CacheMessage {
  readonly partition: number;
  readonly offset: bigint;
  readonly timestamp: number;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: readonly CachedHeader[];
  /** Bit i set when filters[i] matched; 0 when the stream has no filters. */
  readonly filters: number;
  /** Next offset per partition once this message is taken: resuming from it continues after it. */
  readonly progress: ReadonlyMap<number, bigint>;
}

// A partition's read is small so that a stream's memory stays bounded however many partitions
// it spans and however slowly its consumer pulls; the store makes reads cheap enough to repeat.
const READ_RECORDS = 64;
const READ_BYTES = 64 * 1024;
// Buffers of all a stream's partitions together; past it, the buffers of partitions other than
// the one being read are dropped and re-read later (the store, not the buffer, is the truth).
const STREAM_BUFFER_BYTES = 1024 * 1024;
// Records a next() call may examine before it lets the event loop run: a filter that matches
// almost nothing must not turn one call into a scan of the whole cache.
const SCAN_BUDGET = 4096;

interface Cursor {
  readonly partition: number;
  /** Appeared after the stream opened: everything in it is new to the consumer. */
  readonly joinedLater: boolean;
  store: PartitionStore | undefined;
  /** Live start taken at open for a partition that was ready then. */
  liveStart: bigint | undefined;
  next: bigint;
  /** Below this offset (the head when a fresh compacted read began) tombstones are not delivered. */
  snapshotEnd: bigint;
  /** Possibly shared with other streams reading the same records: never modified. */
  buffer: readonly CachedRecord[];
  index: number;
  bufferEnd: bigint;
  bufferBytes: number;
  topicId: string;
}

export interface CacheStreamInit {
  readonly topic: CachedTopic;
  readonly exit: CacheServerApi;
  readonly options: OpenOptions;
  readonly defaultOffset: DefaultOffset;
  readonly onClose?: (stream: CacheStream) => void;
  /**
   * Where a live stream starts on partitions that were not ready at open (the broker's end then);
   * such a partition missing here starts at the cache's head once it is fed.
   */
  readonly liveStarts?: ReadonlyMap<number, bigint>;
  /** Shared by the binding's streams; a stream without one gets a default budget of its own. */
  readonly staging?: StagingBudget;
  /** How the staging budget is named in errors. */
  readonly stagingName?: string;
  /** The topic's models: produced values are encoded, JSON readers see the JSON view. */
  readonly views?: RecordViews;
}

function parseOffset(value: bigint | string, partition: number): bigint {
  if (typeof value === 'bigint') return value;
  if (!/^\d+$/.test(value))
    throw new KgateError(
      'KGATE_INVALID_ARGUMENT',
      `progress of partition ${partition} is not an offset: ${value}`,
    );
  return BigInt(value);
}

function toProgress(given: OpenOptions['partitions']): Map<number, bigint> {
  const out = new Map<number, bigint>();
  if (given === undefined) return out;
  const entries: Iterable<[number | string, bigint | string]> =
    given instanceof Map ? given.entries() : Object.entries(given);
  for (const [key, value] of entries) {
    const partition = Number(key);
    if (!Number.isInteger(partition) || partition < 0)
      throw new KgateError('KGATE_INVALID_ARGUMENT', `progress names partition ${key}`);
    out.set(partition, parseOffset(value, partition));
  }
  return out;
}

/**
 * One consumer's view of a topic: every partition merged into one stream, read from the cache
 * only as the consumer asks. State is the per-partition cursor (also handed out as progress) and
 * at most one small read buffer per partition.
 */
export class CacheStream implements AsyncIterableIterator<CacheMessage> {
  readonly topic: string;
  readonly capabilities: Capabilities;
  readonly isolation: Isolation;
  readonly #cached: CachedTopic;
  readonly #exit: CacheServerApi;
  readonly #defaultOffset: DefaultOffset;
  readonly #resume: Map<number, bigint>;
  readonly #resumed: boolean;
  readonly #onClose: ((stream: CacheStream) => void) | undefined;
  readonly #liveStarts: ReadonlyMap<number, bigint> | undefined;
  readonly #unsubscribe: () => void;
  readonly #staging: StagingBudget;
  readonly #stagingName: string;
  /** Staged messages not yet settled, dropped if the stream closes before they are sent. */
  readonly #staged = new Set<StagedMessage>();
  readonly #unstage = (message: StagedMessage): boolean => this.#staged.delete(message);
  #filters: FilterSet;
  readonly #views: RecordViews | undefined;
  readonly #cursors: Cursor[] = [];
  readonly #progress = new Map<number, bigint>();
  #rr = 0;
  #buffered = 0;
  #closed = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;
  #chain: Promise<unknown> = Promise.resolve();

  constructor(init: CacheStreamInit) {
    const { topic, options } = init;
    this.topic = topic.topic;
    this.capabilities = options.capabilities ?? 'fetch';
    this.isolation = options.isolation ?? 'read_committed';
    this.#cached = topic;
    this.#exit = init.exit;
    this.#defaultOffset = options.defaultOffset ?? init.defaultOffset;
    this.#onClose = init.onClose;
    this.#liveStarts = init.liveStarts;
    this.#staging = init.staging ?? new StagingBudget();
    this.#stagingName = init.stagingName ?? 'the staging budget';
    this.#filters = compileFilters(options.filters);
    this.#views = init.views;
    // A position names only partitions the topic has, so no progress this stream hands out
    // carries one a client made up; a resume naming none of them starts as a fresh stream would.
    this.#resume = knownPartitions(topic, toProgress(options.partitions));
    this.#resumed = this.#resume.size > 0;
    for (const [partition, offset] of this.#resume) this.#progress.set(partition, offset);
    for (const partition of topic.partitions()) this.#addCursor(partition, false);
    this.#unsubscribe = topic.onChange((change) => this.#onChange(change));
  }

  /** Next offset per partition, as far as this stream has read (filtered-out records included). */
  get progress(): ReadonlyMap<number, bigint> {
    return new Map(this.#progress);
  }

  /** Bytes of records read from the cache and not yet delivered. */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * The error that ended the stream (its topic deleted, say), once the cache_server reported it;
   * the next read throws it. A reader that judges the stream by its progress alone checks this.
   */
  get failed(): Error | undefined {
    return this.#error;
  }

  /** Replaces the filters; records not yet delivered are judged by the new ones. */
  setFilters(filters: readonly Filter[] | undefined): void {
    this.#filters = compileFilters(filters);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<CacheMessage, undefined>> {
    return this.#queue(() => this.#next());
  }

  /**
   * Every message deliverable right now, up to `max` messages and, past the first, `maxBytes` of
   * keys and values, in the order next() would give them; waits like next() while there is none,
   * and resolves empty once the stream has ended. A consumer that writes a batch in one go pays
   * one promise per batch rather than one per message, and holds no more than a batch's bytes.
   */
  nextBatch(max: number, maxBytes = Infinity): Promise<CacheMessage[]> {
    return this.#queue(() => this.#nextBatch(Math.max(1, max), maxBytes));
  }

  // Concurrent reads take turns, so each cursor is read by one call at a time.
  #queue<T>(read: () => Promise<T>): Promise<T> {
    const result = this.#chain.then(read);
    this.#chain = result.catch(() => undefined);
    return result;
  }

  return(): Promise<IteratorResult<CacheMessage, undefined>> {
    this.close();
    return Promise.resolve({ done: true, value: undefined });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    this.#cached.release();
    for (const c of this.#cursors) this.#dropBuffer(c);
    // Made only when something is dropped: an Error takes a stack trace, and most streams (one per
    // produce request) close with their message sent.
    if (this.#staged.size > 0) {
      const closed = new Error(`stream on topic ${this.topic} is closed`);
      // Youngest first, so that room freed by one is not granted to another about to be dropped.
      for (const message of [...this.#staged].reverse()) message.abort(closed);
    }
    this.#signal();
    this.#onClose?.(this);
  }

  produce(message: ProduceMessage): Promise<ProduceAck> {
    try {
      this.#checkProduce();
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    const { partition, acks, maxBlockMs, signal, ...record } = message;
    // The client may send this record in one batch with others only while the broker takes it whole.
    const options: ProduceOptions = {
      maxBatchBytes: this.#cached.config.maxMessageBytes,
      ...(acks === undefined ? {} : { acks }),
      ...(maxBlockMs === undefined ? {} : { maxBlockMs }),
      ...(signal === undefined ? {} : { signal }),
    };
    const views = this.#views;
    if (views === undefined) return this.#exit.produce(this.topic, partition, [record], options);
    return encodeRecord(views, record, signal).then((encoded) =>
      this.#exit.produce(this.topic, partition, [encoded], options),
    );
  }

  /**
   * Stages a message whose value comes in chunks; bounded by the topic's max.message.bytes and,
   * with every other staged message of the binding, by its staging budget, and with the others
   * of `owner` (the client connection it comes on), by the budget's share per owner. Closing the
   * stream drops the messages it has not sent yet.
   */
  produceStream(init: StagedMessageInit = {}, owner?: object): StagedMessage {
    this.#checkProduce();
    const message = new StagedMessage(init, {
      topic: this.topic,
      limit: this.#cached.config.maxMessageBytes,
      budget: this.#staging,
      budgetName: this.#stagingName,
      send: (value, headers) =>
        this.produce(headers === undefined ? { ...init, value } : { ...init, value, headers }),
      onSettled: this.#unstage,
      ...(owner === undefined ? {} : { owner }),
    });
    this.#staged.add(message);
    return message;
  }

  #checkProduce(): void {
    if (this.#closed) throw new Error(`stream on topic ${this.topic} is closed`);
    if (this.capabilities === 'fetch')
      throw new Error(`stream on topic ${this.topic} was opened to fetch only`);
  }

  async #next(): Promise<IteratorResult<CacheMessage, undefined>> {
    for (;;) {
      if (!this.#readable()) return { done: true, value: undefined };
      const got = this.#pass({ left: SCAN_BUDGET });
      if (typeof got !== 'string') return { done: false, value: got };
      await this.#idle(got);
    }
  }

  async #nextBatch(max: number, maxBytes: number): Promise<CacheMessage[]> {
    const batch: CacheMessage[] = [];
    let bytes = 0;
    for (;;) {
      if (!this.#readable()) return batch;
      // One scan budget for the whole batch: however many records it examines, a call gives
      // the event loop back as often as next() does.
      const budget = { left: SCAN_BUDGET };
      let got = this.#pass(budget);
      while (typeof got !== 'string') {
        batch.push(got);
        bytes += (got.key?.length ?? 0) + (got.value?.length ?? 0);
        if (batch.length >= max || bytes >= maxBytes) return batch;
        got = this.#pass(budget);
      }
      if (batch.length > 0) return batch;
      await this.#idle(got);
    }
  }

  /** False once the stream is closed; throws the error that ended it. */
  #readable(): boolean {
    if (this.capabilities === 'produce')
      throw new Error(`stream on topic ${this.topic} was opened to produce only`);
    if (this.#closed) return false;
    const error = this.#error;
    if (error !== undefined) {
      this.close();
      throw error;
    }
    return true;
  }

  /** Waits for the next turn when the scan budget ran out, else for the topic to change. */
  #idle(state: 'busy' | 'empty'): Promise<unknown> {
    if (state === 'busy') return nextTurn();
    return new Promise<void>((resolve) => (this.#wake = resolve));
  }

  /** One round over the partitions from where the last left off, up to the first deliverable record. */
  #pass(budget: { left: number }): CacheMessage | 'busy' | 'empty' {
    let busy = false;
    const n = this.#cursors.length;
    for (let i = 0; i < n; i++) {
      const at = (this.#rr + i) % n;
      const c = this.#cursors[at];
      if (c === undefined) continue;
      if (c.store === undefined) {
        // A partition that is not ready yet is passed over, never waited for.
        if (!this.#cached.isReady(c.partition)) continue;
        this.#start(c);
      }
      const got = this.#pull(c, budget);
      if (got === 'busy') {
        // The next pass starts after the partition that spent the budget, so a long run of
        // filtered-out records in one partition cannot hold back the others.
        if (!busy) this.#rr = (at + 1) % n;
        busy = true;
      } else if (got !== 'empty') {
        this.#rr = (at + 1) % n;
        return got;
      }
    }
    return busy ? 'busy' : 'empty';
  }

  #signal(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  #onChange(change: TopicChange): void {
    switch (change.type) {
      case 'partitions':
        this.#repartition(change.partitions);
        break;
      case 'truncated': {
        const c = this.#cursors.find((x) => x.partition === change.partition);
        if (c !== undefined) this.#truncated(c, change.logStartOffset);
        break;
      }
      case 'error':
        this.#error ??= change.error;
        break;
      case 'appended':
      case 'ready':
        break;
    }
    this.#signal();
  }

  /**
   * The topic's partitions are now `partitions`: those new to the stream join the rotation from
   * their log start; those gone leave it, with their buffer and their place in the progress (an
   * offset of a partition that no longer exists would mean nothing to a stream resumed from it).
   */
  #repartition(partitions: readonly number[]): void {
    const now = new Set(partitions);
    for (let i = this.#cursors.length - 1; i >= 0; i--) {
      const c = this.#cursors[i];
      if (c === undefined || now.has(c.partition)) continue;
      this.#dropBuffer(c);
      this.#cursors.splice(i, 1);
      this.#progress.delete(c.partition);
    }
    if (this.#cursors.length > 0) this.#rr %= this.#cursors.length;
    else this.#rr = 0;
    for (const p of partitions) this.#addCursor(p, true);
  }

  #addCursor(partition: number, joinedLater: boolean): void {
    if (this.#cursors.some((c) => c.partition === partition)) return;
    const c: Cursor = {
      partition,
      joinedLater,
      store: undefined,
      liveStart: undefined,
      next: 0n,
      snapshotEnd: -1n,
      buffer: [],
      index: 0,
      bufferEnd: 0n,
      bufferBytes: 0,
      topicId: '',
    };
    // "Live" means after the open call: for a partition that could not be read at open the
    // broker's end then (it may have become ready since), else the head now, else the head when
    // it becomes ready, the nearest the cache can tell.
    if (!joinedLater)
      c.liveStart =
        this.#liveStarts?.get(partition) ??
        (this.#cached.isReady(partition) ? headOf(this.#cached.store(partition)) : undefined);
    this.#cursors.push(c);
  }

  #start(c: Cursor): void {
    const store = this.#cached.store(c.partition);
    c.store = store;
    c.topicId = store.topicId;
    const logStart = store.logStartOffset;
    const given = this.#resume.get(c.partition);
    if (given !== undefined) {
      // Past the end no record will ever arrive: start at the end instead of waiting forever.
      const end = partitionEnd(this.#cached, c.partition, store);
      c.next = given < logStart ? logStart : given > end ? end : given;
    } else if (this.#resumed || c.joinedLater) c.next = logStart;
    else if (this.#cached.compacted) {
      c.next = logStart;
      c.snapshotEnd = headOf(store);
    } else if (this.#defaultOffset === 'historical') c.next = logStart;
    else c.next = c.liveStart ?? headOf(store);
    this.#progress.set(c.partition, c.next);
  }

  #truncated(c: Cursor, logStartOffset: bigint): void {
    const store = c.store;
    if (store === undefined) return;
    if (c.topicId === '') c.topicId = store.topicId;
    else if (store.topicId !== c.topicId) {
      // The topic was deleted and created again: its offsets restarted, so the old cursor means nothing.
      c.topicId = store.topicId;
      this.#dropBuffer(c);
      this.#advance(c, store.logStartOffset, true);
      return;
    }
    const first = c.buffer[c.index];
    if (first !== undefined && first.offset < logStartOffset) this.#dropBuffer(c);
    if (c.next < logStartOffset) this.#advance(c, logStartOffset);
  }

  #advance(c: Cursor, next: bigint, reset = false): void {
    if (!reset && next <= c.next) return;
    c.next = next;
    this.#progress.set(c.partition, next);
  }

  /** Reads the next chunk of a partition into its buffer; false when nothing is readable now. */
  #fill(c: Cursor, store: PartitionStore): boolean {
    if (c.next < store.logStartOffset) this.#advance(c, store.logStartOffset);
    const limit = visibleEnd(store, this.isolation);
    if (c.next >= limit) return false;
    this.#makeRoom(c);
    const result = store.readShared(c.next, { maxRecords: READ_RECORDS, maxBytes: READ_BYTES });
    let records = result.records;
    let end = result.nextOffset;
    const cut = records.findIndex((r) => r.offset >= limit);
    if (cut >= 0) {
      end = records[cut]?.offset ?? end;
      records = records.slice(0, cut);
    }
    if (records.length === 0) {
      // Only holes (compaction, expiry) lay between the cursor and what is readable.
      this.#advance(c, end);
      return false;
    }
    let bytes = 0;
    for (const r of records) bytes += r.size;
    c.buffer = records;
    c.index = 0;
    c.bufferEnd = end;
    c.bufferBytes = bytes;
    this.#buffered += bytes;
    return true;
  }

  #dropBuffer(c: Cursor): void {
    this.#buffered -= c.bufferBytes;
    c.buffer = [];
    c.index = 0;
    c.bufferBytes = 0;
  }

  #makeRoom(reader: Cursor): void {
    if (this.#buffered + READ_BYTES <= STREAM_BUFFER_BYTES) return;
    for (const c of this.#cursors) {
      if (c !== reader && c.bufferBytes > 0) this.#dropBuffer(c);
      if (this.#buffered + READ_BYTES <= STREAM_BUFFER_BYTES) return;
    }
  }

  #pull(c: Cursor, budget: { left: number }): CacheMessage | 'empty' | 'busy' {
    const store = c.store;
    if (store === undefined) return 'empty';
    for (;;) {
      let record = c.buffer[c.index];
      if (record === undefined) {
        if (c.buffer.length > 0) {
          this.#dropBuffer(c);
          this.#advance(c, c.bufferEnd);
        }
        if (budget.left <= 0) return 'busy';
        if (!this.#fill(c, store)) return 'empty';
        record = c.buffer[c.index];
        if (record === undefined) return 'empty';
      }
      const deliverable = this.#deliverable(c, store, record);
      const filters = this.#filters;
      const mask = deliverable && filters.count > 0 ? filters.match(record) : 0;
      const passes = deliverable && (filters.count === 0 || mask !== 0);
      // Judged before the record is taken: one whose schema is still being fetched is read again.
      const viewed =
        passes && this.#views !== undefined ? viewRecord(this.#views, c.partition, record) : record;
      if ('pending' in viewed) {
        this.#awaitSchema(viewed.pending);
        return 'empty';
      }
      c.index++;
      budget.left--;
      this.#advance(c, record.offset + 1n);
      if (!passes) continue;
      if ('skip' in viewed) continue;
      return {
        partition: c.partition,
        offset: record.offset,
        timestamp: record.timestamp,
        key: viewed.key,
        value: viewed.value,
        headers: record.headers,
        filters: mask,
        progress: new Map(this.#progress),
      };
    }
  }

  /** Wakes the stream once a schema it waits for has come; a registry that fails it ends the stream. */
  #awaitSchema(pending: Promise<unknown>): void {
    pending.then(
      () => this.#signal(),
      (error: unknown) => {
        this.#error ??= error instanceof Error ? error : new Error(String(error));
        this.#signal();
      },
    );
  }

  #deliverable(c: Cursor, store: PartitionStore, record: CachedRecord): boolean {
    if (record.control) return false;
    if (record.aborted && this.isolation === 'read_committed') return false;
    if (this.#cached.compacted && record.key !== null) {
      if (record.value === null && record.offset < c.snapshotEnd) return false;
      // Conflation: a consumer behind the head skips values that a newer one has replaced.
      if (!store.isLatestForKey(record.offset, record.key)) return false;
    }
    return true;
  }
}

/** Offset after the last record the partition holds or is known to hold upstream. */
function headOf(store: PartitionStore): bigint {
  return store.highWatermark > store.nextOffset ? store.highWatermark : store.nextOffset;
}
