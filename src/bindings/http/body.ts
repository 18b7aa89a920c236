import { IncomingMessage } from 'node:http';
import { HttpError, type BodyPressure } from '../north.ts';

// Request bodies read with deadlines. A client that sends part of a body and stops would
// otherwise hold what kgate keeps for it (a staged message, a slot of the staging budget, a
// socket) for as long as it keeps the connection open. Only the time spent waiting for the
// client counts: while a handler holds the body back itself (a produce waiting for staging
// budget stops reading, so TCP slows the client down), the client is not late.

/** How long a body may take, counting only the time kgate waits for the client's bytes. */
export interface BodyTimeouts {
  /** Longest wait for the next chunk. */
  readonly idleMs: number;
  /** Longest wait for the whole body; absent: scaled to its size (bodyDeadlineMs). */
  readonly totalMs?: number;
}

/** Default of the idle timeout: nginx's client_body_timeout is 60 s, Apache's mod_reqtimeout 20 s. */
export const DEFAULT_BODY_IDLE_MS = 30_000;
/** What the scaled body deadline starts from, whatever the body's size. */
const BASE_BODY_MS = 60_000;
/** ...and what it adds: one second per this many bytes the body may have (16 KiB/s at the least). */
const BYTES_PER_SECOND = 16 * 1024;

/**
 * The deadline of a body of at most `maxBytes` (unknown: infinite) when none is configured: 60 s
 * plus a second per 16 KiB, so that a client that keeps up an average of 16 KiB/s never meets it
 * (and a full 1 MiB body has 124 s), while one that trickles a byte at a time is let go.
 */
export function bodyDeadlineMs(timeouts: BodyTimeouts, maxBytes: number): number {
  if (timeouts.totalMs !== undefined) return timeouts.totalMs;
  if (!Number.isFinite(maxBytes)) return Number.POSITIVE_INFINITY;
  return BASE_BODY_MS + Math.ceil(maxBytes / BYTES_PER_SECOND) * 1000;
}

/**
 * Why a body was given up: `idle`, no byte for the idle timeout; `stalled`, none for the shorter
 * one that applies under pressure; `total`, the whole body took longer than its deadline.
 */
export type BodyTimeoutKind = 'idle' | 'stalled' | 'total';

/** A body that stopped arriving: answered 408, and its connection closed. */
export class BodyTimeoutError extends HttpError {
  readonly kind: BodyTimeoutKind;
  constructor(kind: BodyTimeoutKind, ms: number, received: number) {
    super(
      'KGATE_BODY_TIMEOUT',
      kind === 'total'
        ? `request body: not complete within ${ms / 1000} s (${received} bytes arrived)`
        : `request body: nothing arrived for ${ms / 1000} s (after ${received} bytes)` +
            (kind === 'stalled' ? ' while other requests waited for the room it holds' : ''),
    );
    this.name = 'BodyTimeoutError';
    this.kind = kind;
  }
}

/** The Content-Length a request announced, if it announced a valid one. */
export function announcedLength(req: IncomingMessage): number | undefined {
  const header = req.headers['content-length'];
  if (header === undefined || !/^\d+$/.test(header)) return undefined;
  return Number(header);
}

/**
 * The chunks of `req`'s body, each wait for the next bounded by `timeouts.idleMs` (or, while
 * `pressure` is active, its shorter `idleMs`) and all of them together by the body's deadline
 * (scaled to the announced length, or to `maxBytes`). Past either it throws a BodyTimeoutError.
 * Whenever the loop ends before the body's end (a timeout, or the caller leaving it) `onUnread`
 * is called, so that the connection, which can carry no other request now, is closed after the
 * answer; the request itself is not destroyed, so that the answer can still be sent.
 */
export async function* readBodyChunks(
  req: IncomingMessage,
  timeouts: BodyTimeouts,
  maxBytes = Number.POSITIVE_INFINITY,
  onUnread?: () => void,
  pressure?: BodyPressure,
): AsyncGenerator<Buffer, void, undefined> {
  const announced = announcedLength(req);
  const deadlineMs = bodyDeadlineMs(timeouts, Math.min(announced ?? maxBytes, maxBytes));
  const chunks = req.iterator({ destroyOnReturn: false });
  let waitedMs = 0;
  let received = 0;
  let ended = false;
  try {
    for (;;) {
      const began = performance.now();
      const remainingMs = deadlineMs - waitedMs;
      // Asked before the read, which may take what is buffered.
      const buffered = inHand(req, received, announced);
      const next = chunks.next();
      const got = buffered
        ? await next
        : await nextOrTimeout(next, began, Math.min(timeouts.idleMs, remainingMs), pressure);
      waitedMs += performance.now() - began;
      if (typeof got === 'string') {
        // The read stays pending until the connection closes; what it ends with is dropped.
        next.catch(() => undefined);
        if (got === 'stalled') throw new BodyTimeoutError('stalled', pressure?.idleMs ?? 0, received);
        if (remainingMs < timeouts.idleMs) throw new BodyTimeoutError('total', deadlineMs, received);
        throw new BodyTimeoutError('idle', timeouts.idleMs, received);
      }
      if (got.done === true) {
        ended = true;
        return;
      }
      const chunk = got.value as Buffer;
      received += chunk.length;
      yield chunk;
    }
  } finally {
    if (!ended) onUnread?.();
    // Unhooks the iterator from the request (after a pending read, if any) without destroying it.
    chunks.return?.().catch(() => undefined);
  }
}

/**
 * Whether the next read is answered without the client sending anything more: a chunk is
 * buffered, or the HTTP/1.1 body is whole (`complete`, or all the bytes its Content-Length
 * announced have come, whose end node:http's parser reports as it parses the last of them, in
 * the same pass). Arming the body's timeouts for such a read would cost a timer, promises and a
 * race per chunk and bound nothing: it settles in the promise jobs and parser callbacks that
 * follow, before any timer could fire. A small body that comes with its head is read without
 * any. HTTP/2 requests always take the timed path.
 */
function inHand(req: IncomingMessage, received: number, announced: number | undefined): boolean {
  if (req.destroyed) return false;
  if (req.readableLength > 0) return true;
  return req instanceof IncomingMessage && (req.complete || received === announced);
}

/**
 * The next chunk, or why none came: `idle` once `idleMs` passed since `began`, `stalled` once
 * the pressure's shorter idle time passed while it was active (it is checked again whenever it
 * may have begun).
 */
async function nextOrTimeout<T>(
  next: Promise<T>,
  began: number,
  idleMs: number,
  pressure: BodyPressure | undefined,
): Promise<T | 'idle' | 'stalled'> {
  for (;;) {
    const pressed = pressure?.active() === true && pressure.idleMs < idleMs;
    const limitMs = pressed ? (pressure?.idleMs ?? idleMs) : idleMs;
    let timer: NodeJS.Timeout | undefined;
    let unsubscribe: (() => void) | undefined;
    const late = new Promise<'idle' | 'stalled'>((resolve) => {
      timer = setTimeout(
        () => resolve(pressed ? 'stalled' : 'idle'),
        Math.max(0, began + limitMs - performance.now()),
      );
    });
    const recheck = new Promise<'recheck'>((resolve) => {
      if (!pressed && pressure !== undefined) unsubscribe = pressure.subscribe(() => resolve('recheck'));
    });
    try {
      const got = await Promise.race([next, late, recheck]);
      if (got !== 'recheck') return got;
    } finally {
      clearTimeout(timer);
      unsubscribe?.();
    }
  }
}
