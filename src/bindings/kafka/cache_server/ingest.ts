import type { Logger } from 'pino';
import { type BackoffOptions, backoffDelay, sleep } from '../client/index.ts';
import type { StorageErrorKind } from './storage-errors.ts';
import { IngestPausedError } from './errors.ts';

export interface IngestGateHost {
  readonly log: Logger;
  /** The store's directory, named in the log lines. */
  readonly path: string;
  /** How often to probe for space while paused: capped and jittered. */
  readonly backoff: BackoffOptions;
  /** What a failed store write of `bytes` means; undefined when it is no storage failure. */
  classify(error: unknown, bytes: number): StorageErrorKind | undefined;
  /** Returns when the store took a write of `bytes` (and let go of it), throws while it cannot. */
  probe(bytes: number): void;
  /** Bytes free on the filesystem under the store, for the log lines. */
  free(): number;
  /** Ingest paused (true, waiting for room for `waitingForBytes`) or resumed (false), for gauges. */
  changed(paused: boolean, waitingForBytes: number): void;
  /** A store write failed, for a counter. */
  storageError(kind: StorageErrorKind): void;
}

interface Pause {
  readonly reason: string;
  readonly since: number;
  /** Bytes the probe writes: room for them is what ingest waits for. */
  readonly wanted: number;
}

/**
 * The least a probe writes. A commit also rewrites a few index and metadata pages (LMDB pages
 * are 4 KiB), so room for a record alone is not quite room for the commit that stores it.
 */
export const MIN_PROBE_BYTES = 16 * 1024;

/**
 * What a probe writes to learn that a commit of `bytes` of records fits: twice as much (a record
 * takes its keys, index entries and page rounding on top of its bytes; for 8 KiB values the store
 * grew by half as much again), and at least MIN_PROBE_BYTES.
 */
export function probeBytes(bytes: number): number {
  return Math.max(MIN_PROBE_BYTES, 2 * Math.ceil(bytes));
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Whether the cache_server may ingest: running, or paused because the disk is full. The commit
 * coalescer pauses it when not even one record could be committed for want of space; feeders then
 * stop fetching and wait, holding nothing, and readers go on reading what is committed. While
 * paused, a probe writes as much as that commit needed (probeBytes) with capped, jittered
 * backoff, and the first that fits resumes ingest, each feeder fetching again from its store's
 * next offset: what was committed stays, what was not is fetched again, once. Room for one commit
 * is enough, whatever the size of the volume: the coalescer sizes commits to what fits.
 *
 * Only the commit path reports errors here; any other storage error is counted and left to the
 * caller's usual retry.
 */
export class IngestGate {
  readonly #host: IngestGateHost;
  #pause: Pause | undefined;
  /** Aborted when ingest pauses, so that fetches in flight stop at once; replaced on resume. */
  #running = new AbortController();
  readonly #waiters = new Set<() => void>();
  /** Probes since the last commit that went through: the backoff keeps growing across pauses. */
  #attempt = 0;
  readonly #stopping = new AbortController();
  #probing: Promise<void> = Promise.resolve();

  constructor(host: IngestGateHost) {
    this.#host = host;
  }

  get paused(): boolean {
    return this.#pause !== undefined;
  }

  /** Aborts when ingest pauses. */
  get signal(): AbortSignal {
    return this.#running.signal;
  }

  /** Why ingest is paused, for status reports; undefined while it runs. */
  get problem(): string | undefined {
    const pause = this.#pause;
    if (pause === undefined) return undefined;
    const since = new Date(pause.since).toISOString();
    return `cache disk full, ingest paused since ${since}, waiting for room to write ${pause.wanted} bytes: ${pause.reason}`;
  }

  /**
   * A store write of `bytes` failed; called once per failed commit, however many appends it
   * carried. Counts it when it is a storage failure and says which kind; pausing is the caller's
   * decision (a commit that failed for want of space may be tried again smaller).
   */
  failed(error: unknown, bytes: number): StorageErrorKind | undefined {
    if (error instanceof IngestPausedError) return undefined;
    const kind = this.#host.classify(error, bytes);
    if (kind !== undefined) this.#host.storageError(kind);
    return kind;
  }

  /** Pauses ingest: a commit of `wanted` bytes, the least that makes progress, did not fit. */
  pause(error: unknown, wanted: number): void {
    if (this.#pause !== undefined || this.#stopping.signal.aborted) return;
    const probe = probeBytes(wanted);
    this.#pause = { reason: describe(error), since: Date.now(), wanted: probe };
    this.#running.abort();
    this.#host.changed(true, probe);
    const code = error instanceof Error ? (error as { code?: unknown }).code : undefined;
    this.#host.log.error(
      { path: this.#host.path, err: error, code, freeBytes: this.#host.free(), waitingForBytes: probe },
      'cache disk full, ingest paused',
    );
    this.#probing = this.#probe();
  }

  /** A commit went through. */
  committed(): void {
    this.#attempt = 0;
  }

  /** Resolves at once while running; else when ingest resumes or signal aborts. */
  whenResumed(signal: AbortSignal): Promise<void> {
    if (this.#pause === undefined || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        signal.removeEventListener('abort', done);
        this.#waiters.delete(done);
        resolve();
      };
      this.#waiters.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Stops probing and releases every waiter. */
  async stop(): Promise<void> {
    this.#stopping.abort();
    this.#wake();
    await this.#probing;
  }

  async #probe(): Promise<void> {
    const stopping = this.#stopping.signal;
    while (!stopping.aborted) {
      await sleep(backoffDelay(this.#attempt++, this.#host.backoff), stopping);
      if (stopping.aborted) return;
      const wanted = this.#pause?.wanted ?? MIN_PROBE_BYTES;
      try {
        this.#host.probe(wanted);
      } catch (error) {
        this.#host.log.debug(
          { path: this.#host.path, err: error, freeBytes: this.#host.free(), waitingForBytes: wanted },
          'cache disk still full',
        );
        continue;
      }
      this.#resume();
      return;
    }
  }

  #resume(): void {
    const pause = this.#pause;
    if (pause === undefined) return;
    this.#pause = undefined;
    this.#running = new AbortController();
    this.#host.changed(false, 0);
    this.#host.log.info(
      { path: this.#host.path, pausedMs: Date.now() - pause.since, freeBytes: this.#host.free() },
      'cache ingest resumed',
    );
    this.#wake();
  }

  #wake(): void {
    for (const done of [...this.#waiters]) done();
  }
}
