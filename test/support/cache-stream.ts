import type { RecordInput } from '../../src/bindings/kafka/cache/index.ts';
import type { CacheMessage, CacheStream } from '../../src/bindings/kafka/cache_client/index.ts';

// What tests reading cache_client streams share: records to feed a fake topic with, and a reader
// that waits for messages with a deadline, so that a missing message fails the test instead of
// hanging it.

/** A record at `offset` as a fake topic appends it, its timestamp following its offset. */
export function rec(
  offset: number,
  key: string | null,
  value: string | null,
  extra: Partial<RecordInput> = {},
): RecordInput {
  return {
    offset: BigInt(offset),
    timestamp: 1_000 + offset,
    key: key === null ? null : Buffer.from(key),
    value: value === null ? null : Buffer.from(value),
    ...extra,
  };
}

/** `count` unkeyed records from offset `start`, each valued `${prefix}${offset}`. */
export function values(start: number, count: number, prefix = 'v'): RecordInput[] {
  return Array.from({ length: count }, (_, i) => rec(start + i, null, `${prefix}${start + i}`));
}

/** Pulls from a stream, keeping an unanswered next() for later instead of losing its message. */
export class StreamReader {
  readonly stream: CacheStream;
  #pending: Promise<IteratorResult<CacheMessage, undefined>> | undefined;

  constructor(stream: CacheStream) {
    this.stream = stream;
  }

  #next(): Promise<IteratorResult<CacheMessage, undefined>> {
    const p = this.#pending ?? this.stream.next();
    this.#pending = p;
    return p;
  }

  async take(count: number, timeoutMs = 2000): Promise<CacheMessage[]> {
    const out: CacheMessage[] = [];
    while (out.length < count) {
      const got = await this.#within(timeoutMs);
      if (got === 'timeout') throw new Error(`only ${out.length} of ${count} messages arrived`);
      if (got.done === true) throw new Error(`stream ended after ${out.length} of ${count} messages`);
      out.push(got.value);
    }
    return out;
  }

  /** True when nothing arrives within ms. */
  async idle(ms = 50): Promise<boolean> {
    const got = await this.#within(ms);
    if (got === 'timeout') return true;
    throw new Error(
      `unexpected ${got.done === true ? 'end' : `message at ${got.value.partition}:${got.value.offset}`}`,
    );
  }

  async #within(ms: number): Promise<IteratorResult<CacheMessage, undefined> | 'timeout'> {
    const next = this.#next();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
    const got = await Promise.race([next, timeout]);
    clearTimeout(timer);
    if (got !== 'timeout') this.#pending = undefined;
    return got;
  }
}
