import type { ServerResponse } from 'node:http';
import type { SseEvent, SseStream } from '../north.ts';
import { formatComment, formatEvent } from './framing.ts';
import { NO_SSE_METRICS, type SseServerMetrics } from './metrics.ts';

export { formatComment, formatEvent } from './framing.ts';

/** Bytes of a sliced event handed to the response at a time. */
export const EVENT_SLICE_BYTES = 64 * 1024;

export interface ResponseSseStreamOptions {
  /** Unsent bytes past which the stream is cut rather than buffered further. */
  readonly maxBufferedBytes: number;
  readonly onOverflow: (buffered: number) => void;
  readonly metrics?: SseServerMetrics;
}

/**
 * An SseStream over an HTTP response whose headers are out. Writes go straight to the response;
 * `send` reports false once more than the socket's high-water mark is unsent, and a producer that
 * carries on regardless until `maxBufferedBytes` are queued has the stream cut, so that one slow
 * client can cost at most that much memory. An event larger than a slice goes out through
 * `sendSliced`, which waits for the socket between slices, so the bound holds for it too.
 */
export class ResponseSseStream implements SseStream {
  readonly #res: ServerResponse;
  readonly #maxBufferedBytes: number;
  readonly #controller = new AbortController();
  readonly #onOverflow: (buffered: number) => void;
  readonly #metrics: SseServerMetrics;
  /** An event is going out a slice at a time: nothing else may be written into the middle of it. */
  #slicing = false;

  constructor(res: ServerResponse, options: ResponseSseStreamOptions) {
    this.#res = res;
    this.#maxBufferedBytes = options.maxBufferedBytes;
    this.#onOverflow = options.onOverflow;
    this.#metrics = options.metrics ?? NO_SSE_METRICS;
    const disconnected = this.#metrics.clientConnected();
    res.once('close', () => {
      disconnected();
      this.#controller.abort();
    });
  }

  get closed(): AbortSignal {
    return this.#controller.signal;
  }

  /** Bytes queued for the client and not yet handed to the kernel. */
  get buffered(): number {
    return this.#res.writableLength;
  }

  send(event: SseEvent): boolean {
    return this.#write(formatEvent(event), 1);
  }

  sendFramed(frames: string, count: number): boolean {
    return this.#write(frames, count);
  }

  async sendSliced(pieces: readonly (string | Buffer)[]): Promise<boolean> {
    if (this.#slicing) throw new Error('one sliced event at a time');
    this.#slicing = true;
    try {
      for (let i = 0; i < pieces.length; i++) {
        const piece = pieces[i] ?? '';
        const bytes = typeof piece === 'string' ? Buffer.from(piece, 'utf8') : piece;
        for (let at = 0; at < bytes.length; at += EVENT_SLICE_BYTES) {
          const end = Math.min(at + EVENT_SLICE_BYTES, bytes.length);
          const last = i === pieces.length - 1 && end === bytes.length;
          // A view of the piece: a value shared by many streams is never copied for one.
          // Waiting between slices is how a large event goes out, not a sign of a slow client:
          // it is not counted as a pause.
          if (!this.#write(bytes.subarray(at, end), last ? 1 : 0)) await this.#drain();
          if (this.closed.aborted) return false;
        }
      }
      return true;
    } finally {
      this.#slicing = false;
    }
  }

  comment(text: string): void {
    if (!this.#slicing) this.#write(formatComment(text), 0);
  }

  /** Keeps idle connections alive through proxies; skipped while data is queued, which does the same. */
  keepAlive(): void {
    if (!this.closed.aborted && !this.#slicing && !this.#res.writableNeedDrain) this.#write(':\n\n', 0);
  }

  /** Sends a reconnect delay without ending the stream. */
  retry(retryMs: number): void {
    if (!this.#slicing) this.#write(`retry: ${Math.max(0, Math.floor(retryMs))}\n\n`, 0);
  }

  drained(): Promise<void> {
    if (this.closed.aborted || !this.#res.writableNeedDrain) return Promise.resolve();
    this.#metrics.paused();
    return this.#drain();
  }

  #drain(): Promise<void> {
    if (this.closed.aborted || !this.#res.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.#res.off('drain', done);
        this.closed.removeEventListener('abort', done);
        resolve();
      };
      this.#res.once('drain', done);
      this.closed.addEventListener('abort', done, { once: true });
    });
  }

  close(retryMs?: number): void {
    if (this.closed.aborted) return;
    // Into the middle of a sliced event the hint would end that event early, with half its data.
    if (retryMs !== undefined && !this.#slicing && !this.#res.writableNeedDrain) this.retry(retryMs);
    this.#res.end();
    this.#controller.abort();
  }

  #write(text: string | Buffer, events: number): boolean {
    if (this.closed.aborted) return false;
    const res = this.#res;
    const buffered = res.writableLength;
    if (buffered > this.#maxBufferedBytes) {
      this.#onOverflow(buffered);
      this.#metrics.dropped();
      res.destroy();
      this.#controller.abort();
      return false;
    }
    // A chunked response writes a chunk as four pieces (size, CRLF, data, CRLF): with the socket
    // corked they leave in one writev. (Corking the response instead would make write() measure
    // its own chunk buffer rather than the socket, and 'drain' would never come.)
    const socket = res.socket;
    socket?.cork();
    const ok = res.write(text);
    socket?.uncork();
    this.#metrics.sent(events, typeof text === 'string' ? Buffer.byteLength(text) : text.length);
    return ok;
  }
}
