import type { IncomingMessage } from 'node:http';
import { HttpError } from '../north.ts';

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

/** A body that stopped arriving: answered 408, and its connection closed. */
export class BodyTimeoutError extends HttpError {
  /** `idle`: no byte for the idle timeout; `total`: the whole body took longer than its deadline. */
  readonly kind: 'idle' | 'total';
  constructor(kind: 'idle' | 'total', ms: number, received: number) {
    super(
      'KGATE_BODY_TIMEOUT',
      kind === 'idle'
        ? `request body: nothing arrived for ${ms / 1000} s (after ${received} bytes)`
        : `request body: not complete within ${ms / 1000} s (${received} bytes arrived)`,
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
 * The chunks of `req`'s body, each wait for the next bounded by `timeouts.idleMs` and all of
 * them together by the body's deadline (scaled to the announced length, or to `maxBytes`). Past
 * either it throws a BodyTimeoutError. Whenever the loop ends before the body's end (a timeout,
 * or the caller leaving it) `onUnread` is called, so that the connection, which can carry no
 * other request now, is closed after the answer; the request itself is not destroyed, so that
 * the answer can still be sent.
 */
export async function* readBodyChunks(
  req: IncomingMessage,
  timeouts: BodyTimeouts,
  maxBytes = Number.POSITIVE_INFINITY,
  onUnread?: () => void,
): AsyncGenerator<Buffer, void, undefined> {
  const announced = announcedLength(req);
  const deadlineMs = bodyDeadlineMs(timeouts, Math.min(announced ?? maxBytes, maxBytes));
  const chunks = req.iterator({ destroyOnReturn: false });
  let waitedMs = 0;
  let received = 0;
  let ended = false;
  let timer: NodeJS.Timeout | undefined;
  try {
    for (;;) {
      const idleMs = Math.min(timeouts.idleMs, deadlineMs - waitedMs);
      const began = performance.now();
      const next = chunks.next();
      const late = new Promise<'late'>((resolve) => {
        timer = setTimeout(() => resolve('late'), Math.max(0, idleMs));
      });
      const got = await Promise.race([next, late]);
      clearTimeout(timer);
      waitedMs += performance.now() - began;
      if (got === 'late') {
        // The read stays pending until the connection closes; what it ends with is dropped.
        next.catch(() => undefined);
        const kind = idleMs < timeouts.idleMs ? 'total' : 'idle';
        throw new BodyTimeoutError(kind, kind === 'idle' ? timeouts.idleMs : deadlineMs, received);
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
    clearTimeout(timer);
    if (!ended) onUnread?.();
    // Unhooks the iterator from the request (after a pending read, if any) without destroying it.
    chunks.return?.().catch(() => undefined);
  }
}
