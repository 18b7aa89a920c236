// A fetch answer (a merged document, or the latest matching message) is read from the topic once
// per version and shared by every request that wants that version: the waiters one write wakes,
// and GETs that arrive together. Built per request, a multi-megabyte document costs its size again
// for every one of them, and a thousand parked waiters woken at once are a thousand copies.

/** A fetch answer read from the topic up to now. */
export interface Snapshot {
  /** How far each partition was read: the ETag. */
  readonly progress: ReadonlyMap<number, bigint>;
  /** The merged document, or the latest matching message's value; undefined when nothing matches. */
  readonly body: Buffer | undefined;
  /** The latest message's `content-type` header as stored; the route decides what is answered. */
  readonly storedContentType?: string;
  /**
   * Partitions whose oldest records the cache's byte budget had evicted, Kafka may still holding
   * them, each with the offset the read covered it from (evictedHeads, after the read); absent
   * when there were none.
   */
  readonly evicted?: ReadonlyMap<number, bigint>;
  /**
   * Which incarnation of the topic (its topic id) it was read from: a topic deleted and created
   * again may reach the same offsets, and a snapshot of the old one must not pass for current.
   */
  readonly incarnation?: string;
}

/** A snapshot a request holds while it answers with it. */
export interface HeldSnapshot {
  readonly snapshot: Snapshot;
  /** True when another request's read made it. */
  readonly shared: boolean;
  /** Lets go of it; the snapshot is forgotten once nobody holds or reads it. */
  release(): void;
}

/** Reads of the topic in progress would pass the binding's bound: the request is refused. */
export class SnapshotReadsExhausted extends Error {
  readonly limit: number;

  constructor(limit: number) {
    super(`more than ${limit} topic reads for fetch answers at once (limits.snapshot-reads)`);
    this.limit = limit;
  }
}

interface Read {
  /** Order of this read among the reads of its answer. */
  readonly seq: number;
  readonly done: Promise<Snapshot | 'gone'>;
  /** Ends the read once no request wants it any more. */
  readonly abort: AbortController;
  waiting: number;
}

interface Entry {
  /** Reads started for this answer so far. */
  seq: number;
  reading: Read | undefined;
  latest: { readonly seq: number; readonly snapshot: Snapshot } | undefined;
  /** Requests waiting for or answering with a snapshot of this answer. */
  holders: number;
}

/**
 * Snapshots by answer (a route and its filters): at most one read of each answer runs at a time,
 * and at most `maxReads` of all answers together. A request takes a snapshot that a read started
 * after the request arrived made, or one still current (nothing the read would see has changed
 * since); otherwise it joins the read in progress, or starts one.
 */
export class SharedSnapshots {
  readonly #entries = new Map<string, Entry>();
  readonly #maxReads: number;
  readonly #onRead: () => () => void;
  #reads = 0;

  constructor(maxReads: number, onRead: () => () => void = () => () => undefined) {
    this.#maxReads = maxReads;
    this.#onRead = onRead;
  }

  /** Reads in progress, over every answer. */
  get reads(): number {
    return this.#reads;
  }

  /** Answers known, held or being read. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * The snapshot of `key` for a request arriving now: `isCurrent` tells whether a snapshot is still
   * what a read started now would give, `read` reads one (ending early with 'gone' when its signal
   * aborts). 'gone' once `gone` aborted; rejects with the read's failure, or SnapshotReadsExhausted.
   */
  async get(
    key: string,
    gone: AbortSignal,
    isCurrent: (snapshot: Snapshot) => boolean,
    read: (signal: AbortSignal) => Promise<Snapshot | 'gone'>,
  ): Promise<HeldSnapshot | 'gone'> {
    let entry = this.#entries.get(key);
    if (entry === undefined) {
      entry = { seq: 0, reading: undefined, latest: undefined, holders: 0 };
      this.#entries.set(key, entry);
    }
    const held = entry;
    held.holders++;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      held.holders--;
      this.#forget(key, held);
    };
    // A read that began before this request arrived may have missed what the request must see
    // (a write acknowledged to its client just before); one that began after cannot.
    const arrived = held.seq;
    let own = 0;
    try {
      for (;;) {
        if (gone.aborted) {
          release();
          return 'gone';
        }
        const latest = held.latest;
        if (latest !== undefined && (latest.seq > arrived || isCurrent(latest.snapshot)))
          return { snapshot: latest.snapshot, shared: latest.seq !== own, release };
        let reading = held.reading;
        // A read every request left is ending: the next request needs one of its own.
        if (reading === undefined || reading.abort.signal.aborted) {
          reading = this.#start(key, held, read);
          own = reading.seq;
        }
        await this.#join(reading, gone);
      }
    } catch (error) {
      release();
      throw error;
    }
  }

  #start(key: string, entry: Entry, read: (signal: AbortSignal) => Promise<Snapshot | 'gone'>): Read {
    if (this.#reads >= this.#maxReads) throw new SnapshotReadsExhausted(this.#maxReads);
    this.#reads++;
    const ended = this.#onRead();
    const seq = ++entry.seq;
    const abort = new AbortController();
    const done = read(abort.signal).then((snapshot) => {
      if (snapshot !== 'gone' && (entry.latest === undefined || entry.latest.seq < seq))
        entry.latest = { seq, snapshot };
      return snapshot;
    });
    const reading: Read = { seq, done, abort, waiting: 0 };
    entry.reading = reading;
    const finish = (): void => {
      this.#reads--;
      ended();
      if (entry.reading === reading) entry.reading = undefined;
      this.#forget(key, entry);
    };
    done.then(finish, finish);
    return reading;
  }

  /**
   * Waits for `reading`: its snapshot, or 'gone' once the request left (or the read ended without
   * one). A request that leaves stops counting, and the last to leave ends the read.
   */
  async #join(reading: Read, gone: AbortSignal): Promise<Snapshot | 'gone'> {
    reading.waiting++;
    let onGone: (() => void) | undefined;
    const left = new Promise<'gone'>((resolve) => {
      onGone = () => resolve('gone');
      gone.addEventListener('abort', onGone, { once: true });
    });
    try {
      return await Promise.race([reading.done, left]);
    } finally {
      if (onGone !== undefined) gone.removeEventListener('abort', onGone);
      if (--reading.waiting === 0 && gone.aborted) reading.abort.abort();
    }
  }

  #forget(key: string, entry: Entry): void {
    if (entry.holders === 0 && entry.reading === undefined && this.#entries.get(key) === entry)
      this.#entries.delete(key);
  }
}
