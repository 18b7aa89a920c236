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
  /** What a failed store write means; undefined when it is no storage failure. */
  classify(error: unknown): StorageErrorKind | undefined;
  /** Returns when the store can take writes again, throws while it cannot. */
  probe(): void;
  /** Ingest paused (true) or resumed (false), for a gauge. */
  changed(paused: boolean): void;
  /** A store write failed, for a counter. */
  storageError(kind: StorageErrorKind): void;
}

interface Pause {
  readonly reason: string;
  readonly since: number;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Whether the cache_server may ingest: running, or paused because the disk is full. A write
 * failing for want of space pauses it; feeders then stop fetching and wait, holding nothing, and
 * readers go on reading what is committed. While paused, a probe tries a write with capped,
 * jittered backoff, and the first that succeeds resumes ingest, each feeder fetching again from
 * its store's next offset: what was committed stays, what was not is fetched again, once.
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
    return `cache disk full, ingest paused since ${new Date(pause.since).toISOString()}: ${pause.reason}`;
  }

  /**
   * A store write failed; called once per failed commit, however many appends it carried.
   * Returns true when ingest is paused (by this error or before it), in which case the caller
   * drops what it holds and waits in whenResumed().
   */
  report(error: unknown): boolean {
    if (error instanceof IngestPausedError) return true;
    const kind = this.#host.classify(error);
    if (kind === undefined) return this.paused;
    this.#host.storageError(kind);
    if (kind === 'no_space') this.#enterPause(error);
    return this.paused;
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

  #enterPause(error: unknown): void {
    if (this.#pause !== undefined || this.#stopping.signal.aborted) return;
    this.#pause = { reason: describe(error), since: Date.now() };
    this.#running.abort();
    this.#host.changed(true);
    const code = error instanceof Error ? (error as { code?: unknown }).code : undefined;
    this.#host.log.error({ path: this.#host.path, err: error, code }, 'cache disk full, ingest paused');
    this.#probing = this.#probe();
  }

  async #probe(): Promise<void> {
    const stopping = this.#stopping.signal;
    while (!stopping.aborted) {
      await sleep(backoffDelay(this.#attempt++, this.#host.backoff), stopping);
      if (stopping.aborted) return;
      try {
        this.#host.probe();
      } catch (error) {
        this.#host.log.debug({ path: this.#host.path, err: error }, 'cache disk still full');
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
    this.#host.changed(false);
    this.#host.log.info(
      { path: this.#host.path, pausedMs: Date.now() - pause.since },
      'cache ingest resumed',
    );
    this.#wake();
  }

  #wake(): void {
    for (const done of [...this.#waiters]) done();
  }
}
