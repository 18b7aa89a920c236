import type { CachedTopic } from '../cache_server/api.ts';
import type { CacheMessage, CacheStream } from './stream.ts';
import { UpToNow } from './up-to-now.ts';

export type HeadStep =
  | { readonly type: 'message'; readonly message: CacheMessage }
  /** The stream has read everything the topic held when reading began, and what came since. */
  | { readonly type: 'head' }
  | { readonly type: 'timeout' }
  /** The stream ended or the caller's signal aborted. */
  | { readonly type: 'end' };

// How often the reader looks at the stream's progress while no message comes: a stream whose
// remaining records are all filtered out advances without delivering, and says nothing about it.
const POLL_MS = 20;

/**
 * Reads a cache stream up to "now" (see UpToNow for when a read is caught up): what an HTTP fetch
 * answers with, and the progress its ETag names. `topic` is an attachment to the stream's topic.
 */
export class HeadReader {
  readonly #stream: CacheStream;
  readonly #upToNow: UpToNow;
  #pending: Promise<IteratorResult<CacheMessage, undefined>> | undefined;

  constructor(stream: CacheStream, topic: CachedTopic) {
    this.#stream = stream;
    this.#upToNow = new UpToNow(topic, stream.isolation);
  }

  /** What the stream has consumed; final once finish() has resolved. */
  get progress(): ReadonlyMap<number, bigint> {
    return this.#stream.progress;
  }

  caughtUp(): boolean {
    return this.#upToNow.caughtUp(this.#stream.progress);
  }

  /**
   * The next message; `head` once caught up (when `stopAtHead`), `timeout` at `until` (epoch ms).
   * After `head` or `timeout` call finish(): a message the stream had already taken may be waiting.
   * Throws the error that ended the stream (its topic deleted).
   */
  async step(until: number, stopAtHead: boolean, signal?: AbortSignal): Promise<HeadStep> {
    for (;;) {
      if (signal?.aborted === true) return { type: 'end' };
      // A stream whose topic was deleted has no partitions left, which would look caught up: the
      // read fails instead of answering part of a topic that is gone.
      const failed = this.#stream.failed;
      if (failed !== undefined) throw failed;
      if (stopAtHead && this.caughtUp()) return { type: 'head' };
      const left = until - Date.now();
      if (left <= 0) return { type: 'timeout' };
      this.#pending ??= this.#stream.next();
      let timer: NodeJS.Timeout | undefined;
      let onAbort: (() => void) | undefined;
      const tick = new Promise<'tick'>((resolve) => {
        timer = setTimeout(() => resolve('tick'), stopAtHead ? Math.min(POLL_MS, left) : left);
        onAbort = () => resolve('tick');
        signal?.addEventListener('abort', onAbort, { once: true });
      });
      const got = await Promise.race([this.#pending, tick]);
      clearTimeout(timer);
      if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
      if (got === 'tick') continue;
      this.#pending = undefined;
      if (got.done === true) return { type: 'end' };
      return { type: 'message', message: got.value };
    }
  }

  /**
   * Closes the stream. Resolves with the message an outstanding next() had already taken (its
   * progress counts it), so that nothing the progress claims goes unseen.
   */
  async finish(): Promise<CacheMessage | undefined> {
    this.#stream.close();
    const pending = this.#pending;
    this.#pending = undefined;
    if (pending === undefined) return undefined;
    try {
      const got = await pending;
      return got.done === true ? undefined : got.value;
    } catch {
      return undefined;
    }
  }
}
