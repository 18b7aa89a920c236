import type { Logger } from 'pino';
import { KgateError } from '../../engine/errors.ts';
import type { CacheMessage, CacheStream } from '../kafka/cache_client/index.ts';
import type { CacheClient } from '../proxies/cache-clients.ts';

/** A reply as the HTTP response it becomes. */
export interface Reply {
  readonly status: number;
  /** The reply's `content-type` header as stored; the route decides what is answered. */
  readonly contentType?: string;
  /** The reply's other headers that go back as response headers, in record order. */
  readonly headers: readonly (readonly [string, string])[];
  readonly body: Buffer;
  /**
   * Why the reply cannot be passed on (a `:status` that is not a final status): it is answered
   * 502 with this message instead.
   */
  readonly invalid?: string;
}

export interface ReplyBookLimits {
  /** Correlation ids awaited at once (pending) and replies kept (arrived), each. */
  readonly maxEntries: number;
  /** Bytes of arrived reply bodies kept together. */
  readonly maxBytes: number;
  /** How long a pending id or an arrived reply is kept. */
  readonly ttlMs: number;
  readonly now?: () => number;
}

export const DEFAULT_REPLY_LIMITS: ReplyBookLimits = {
  maxEntries: 10_000,
  maxBytes: 16 * 1024 * 1024,
  ttlMs: 5 * 60_000,
};

interface Arrived {
  readonly reply: Reply;
  readonly expires: number;
}

/**
 * Correlation bookkeeping for one reply topic. Only replies to ids this gateway produced (and
 * still expects) are kept: a reply topic shared with other gateways must not push ours out.
 * Both maps are in insertion order, so the oldest entry is the first one and goes first when a
 * bound is reached; expiry is checked lazily on access and on every insertion.
 */
export class ReplyBook {
  readonly #limits: ReplyBookLimits;
  readonly #now: () => number;
  readonly #expected = new Map<string, number>();
  readonly #arrived = new Map<string, Arrived>();
  readonly #waiters = new Map<string, Set<(reply: Reply) => void>>();
  #bytes = 0;

  constructor(limits: Partial<ReplyBookLimits> = {}) {
    this.#limits = { ...DEFAULT_REPLY_LIMITS, ...limits };
    this.#now = limits.now ?? Date.now;
  }

  get pendingCount(): number {
    return this.#expected.size;
  }

  get arrivedCount(): number {
    return this.#arrived.size;
  }

  get arrivedBytes(): number {
    return this.#bytes;
  }

  /** Marks an id as awaited, so that its reply is kept when it arrives with nobody waiting. */
  expect(cid: string): void {
    this.#expected.delete(cid);
    this.#expected.set(cid, this.#now() + this.#limits.ttlMs);
    this.#sweep();
    while (this.#expected.size > this.#limits.maxEntries) {
      const oldest = this.#expected.keys().next();
      if (oldest.done === true) break;
      this.#expected.delete(oldest.value);
    }
  }

  /** Hands a reply to its waiters, and keeps it when its id is expected; false when nobody wanted it. */
  deliver(cid: string, reply: Reply): boolean {
    const waiters = this.#waiters.get(cid);
    const expected = (this.#expected.get(cid) ?? 0) > this.#now();
    if (waiters !== undefined) {
      this.#waiters.delete(cid);
      for (const wake of waiters) wake(reply);
    }
    this.#expected.delete(cid);
    if (expected) this.#keep(cid, reply);
    return expected || waiters !== undefined;
  }

  /** The arrived reply, if it is still kept. */
  get(cid: string): Reply | undefined {
    const arrived = this.#arrived.get(cid);
    if (arrived === undefined) return undefined;
    if (arrived.expires <= this.#now()) {
      this.#drop(cid, arrived);
      return undefined;
    }
    return arrived.reply;
  }

  /** Whether the id is awaited or its reply is kept. */
  knows(cid: string): boolean {
    const expires = this.#expected.get(cid);
    if (expires !== undefined && expires > this.#now()) return true;
    return this.get(cid) !== undefined;
  }

  /** Forgets an id and its reply: a synchronous request that was answered needs neither again. */
  forget(cid: string): void {
    this.#expected.delete(cid);
    const arrived = this.#arrived.get(cid);
    if (arrived !== undefined) this.#drop(cid, arrived);
  }

  /** The reply, waiting up to `ms` for it (Infinity: until it comes); undefined on timeout or abort. */
  wait(cid: string, ms: number, signal?: AbortSignal): Promise<Reply | undefined> {
    const now = this.get(cid);
    if (now !== undefined || ms <= 0 || signal?.aborted === true) return Promise.resolve(now);
    return new Promise((resolve) => {
      let waiters = this.#waiters.get(cid);
      if (waiters === undefined) {
        waiters = new Set();
        this.#waiters.set(cid, waiters);
      }
      const set = waiters;
      const done = (reply: Reply | undefined): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        set.delete(wake);
        if (set.size === 0 && this.#waiters.get(cid) === set) this.#waiters.delete(cid);
        resolve(reply);
      };
      const wake = (reply: Reply): void => done(reply);
      const onAbort = (): void => done(undefined);
      const timer = Number.isFinite(ms) ? setTimeout(() => done(undefined), ms) : undefined;
      signal?.addEventListener('abort', onAbort, { once: true });
      set.add(wake);
    });
  }

  #keep(cid: string, reply: Reply): void {
    const previous = this.#arrived.get(cid);
    if (previous !== undefined) this.#drop(cid, previous);
    this.#arrived.set(cid, { reply, expires: this.#now() + this.#limits.ttlMs });
    this.#bytes += reply.body.length;
    this.#sweep();
    while (this.#arrived.size > this.#limits.maxEntries || this.#bytes > this.#limits.maxBytes) {
      const oldest = this.#arrived.entries().next();
      if (oldest.done === true) break;
      this.#drop(oldest.value[0], oldest.value[1]);
    }
  }

  #drop(cid: string, arrived: Arrived): void {
    this.#arrived.delete(cid);
    this.#bytes -= arrived.reply.body.length;
  }

  /** Drops what expired from the front of both maps (entries are added with the same TTL, in order). */
  #sweep(): void {
    const now = this.#now();
    for (const [cid, expires] of this.#expected) {
      if (expires > now) break;
      this.#expected.delete(cid);
    }
    for (const [cid, arrived] of this.#arrived) {
      if (arrived.expires > now) break;
      this.#drop(cid, arrived);
    }
  }
}

/** The value of a Kafka header by name (the last one wins, as for an HTTP response header). */
export function kafkaHeader(message: CacheMessage, name: string): string | undefined {
  let found: string | undefined;
  const lower = name.toLowerCase();
  for (const h of message.headers)
    if (h.value !== null && h.name.toString('latin1').toLowerCase() === lower)
      found = h.value.toString('utf8');
  return found;
}

/**
 * The status a reply's `:status` header asks for: 200 when absent, else a final status (200 to
 * 599). An informational status (1xx) would be sent as an interim response with the real one
 * never following, and anything else is not a status; either is invalid.
 */
function replyStatus(text: string | undefined): number | string {
  if (text === undefined) return 200;
  const trimmed = text.trim();
  const status = /^\d{3}$/.test(trimmed) ? Number(trimmed) : Number.NaN;
  if (status >= 200 && status <= 599) return status;
  return `the reply's :status ${JSON.stringify(text.slice(0, 32))} is not a final HTTP status (200 to 599)`;
}

/**
 * Reply headers that never go back as they are: the response's framing and its connection are
 * kgate's to write (a reply's own would break them), and `content-type` goes through the route's
 * list of content types.
 */
const NOT_ANSWERED = new Set([
  'content-type',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'proxy-connection',
  'upgrade',
  'te',
  'trailer',
]);

/** RFC 9110 token characters, what a header name is made of. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Bytes a header value may hold as Node writes it: none of CR, LF, NUL or other controls. */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * The headers of a reply record answered as response headers, as Zilla answers them: every one
 * but the correlation id, pseudo-headers (`:status` is the status) and NOT_ANSWERED, and, since
 * they could not be written, names that are not tokens and values with control characters.
 * Values go out as the bytes they are.
 */
function answeredHeaders(message: CacheMessage, correlationHeader: string): [string, string][] {
  const skipped = correlationHeader.toLowerCase();
  const headers: [string, string][] = [];
  for (const h of message.headers) {
    const name = h.name.toString('latin1').toLowerCase();
    const value = h.value === null ? '' : h.value.toString('latin1');
    if (name === skipped || NOT_ANSWERED.has(name) || !TOKEN.test(name) || !FIELD_VALUE.test(value)) continue;
    headers.push([name, value]);
  }
  return headers;
}

/**
 * The HTTP response a reply message stands for: `:status` header (else 200), content-type, the
 * other headers but the correlation id, value; a reply whose status cannot be answered is marked
 * invalid.
 */
export function replyOf(message: CacheMessage, correlationHeader: string): Reply {
  const status = replyStatus(kafkaHeader(message, ':status'));
  const contentType = kafkaHeader(message, 'content-type');
  // Copied: the stream's buffers are views the next read replaces.
  const body = message.value === null ? Buffer.alloc(0) : Buffer.from(message.value);
  return {
    ...(typeof status === 'number' ? { status } : { status: 502, invalid: status }),
    ...(contentType === undefined ? {} : { contentType }),
    headers: answeredHeaders(message, correlationHeader),
    body,
  };
}

/**
 * How long ready() waits for Kafka (the topic's metadata) and then for the cache to hold every
 * partition of the reply topic, unless told otherwise.
 */
const READY_TIMEOUT_MS = 30_000;
const READY_POLL_MS = 20;
const REOPEN_MS = 1_000;

/**
 * Follows one reply topic for every request waiting on it: one live cache stream, whatever the
 * number of requests, dispatching each reply to the book by its correlation id. The stream is
 * live from open, so a request must be produced only after ready() resolved; on a stream error it
 * is reopened from its progress, losing nothing.
 */
export class ReplyWatcher {
  readonly topic: string;
  readonly book: ReplyBook;
  readonly #client: CacheClient;
  readonly #correlationHeader: string;
  readonly #log: Logger;
  readonly #stop = new AbortController();
  readonly #ready: Promise<void>;
  #stream: CacheStream | undefined;
  #loop: Promise<void> = Promise.resolve();

  constructor(
    client: CacheClient,
    topic: string,
    correlationHeader: string,
    log: Logger,
    options: { readonly limits?: Partial<ReplyBookLimits>; readonly timeoutMs?: number } = {},
  ) {
    this.#client = client;
    this.topic = topic;
    this.#correlationHeader = correlationHeader;
    this.#log = log;
    this.book = new ReplyBook(options.limits);
    this.#ready = this.#open(options.timeoutMs ?? READY_TIMEOUT_MS);
    // Failure is reported to the callers of ready(); the loop starts only on success.
    this.#ready.then(
      () => {
        this.#loop = this.#follow();
      },
      () => undefined,
    );
  }

  ready(): Promise<void> {
    return this.#ready;
  }

  async close(): Promise<void> {
    this.#stop.abort();
    this.#stream?.close();
    await this.#loop;
  }

  async #open(timeoutMs: number): Promise<void> {
    const waits = { signal: this.#stop.signal, timeoutMs };
    const stream = await this.#client.open(this.topic, { defaultOffset: 'live', ...waits });
    this.#stream = stream;
    // "Live" is fixed per partition when the cache has it; until then a reply could be missed.
    const topic = await this.#client.attach(this.topic, waits);
    try {
      const by = Date.now() + timeoutMs;
      while (!topic.partitions().every((p) => topic.isReady(p))) {
        if (this.#stop.signal.aborted) throw new Error(`reply topic ${this.topic}: stopped`);
        if (Date.now() > by) throw this.#notCaughtUp(timeoutMs);
        await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
      }
    } catch (error) {
      stream.close();
      throw error;
    } finally {
      topic.release();
    }
  }

  /** The cache did not fetch every partition in time: because no broker answers, if none does. */
  #notCaughtUp(waitedMs: number): KgateError {
    const unreachable = this.#client.unreachable?.(this.topic);
    const within = `the cache did not catch up within ${waitedMs / 1000} s`;
    return unreachable === undefined
      ? new KgateError('KGATE_NOT_CAUGHT_UP', `reply topic ${this.topic}: ${within}`)
      : new KgateError('KGATE_KAFKA_UNAVAILABLE', `reply topic ${this.topic}: ${within}: ${unreachable}`);
  }

  async #follow(): Promise<void> {
    try {
      await this.#followStreams();
    } finally {
      // A stream opened while close() ran must not outlive the watcher.
      this.#stream?.close();
    }
  }

  async #followStreams(): Promise<void> {
    while (!this.#stop.signal.aborted) {
      const stream = this.#stream;
      if (stream === undefined) return;
      try {
        for await (const message of stream) this.#take(message);
        return;
      } catch (error) {
        if (this.#stop.signal.aborted) return;
        this.#log.warn({ err: error, topic: this.topic }, 'reply stream failed; reopening');
        await this.#reopen(stream.progress);
      }
    }
  }

  async #reopen(progress: ReadonlyMap<number, bigint>): Promise<void> {
    while (!this.#stop.signal.aborted) {
      await new Promise((resolve) => setTimeout(resolve, REOPEN_MS));
      try {
        this.#stream = await this.#client.open(this.topic, {
          partitions: progress,
          signal: this.#stop.signal,
        });
        return;
      } catch (error) {
        if (this.#stop.signal.aborted) return;
        this.#log.warn({ err: error, topic: this.topic }, 'reopening reply stream failed');
      }
    }
  }

  #take(message: CacheMessage): void {
    const cid = kafkaHeader(message, this.#correlationHeader);
    if (cid === undefined) return;
    this.book.deliver(cid, replyOf(message, this.#correlationHeader));
  }
}
