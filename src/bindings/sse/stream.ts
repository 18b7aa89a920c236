import type { ServerResponse } from 'node:http';
import type { SseEvent, SseStream } from '../north.ts';
import { formatComment, formatEvent } from './framing.ts';
import { NO_SSE_METRICS, type SseServerMetrics } from './metrics.ts';

export { formatComment, formatEvent } from './framing.ts';

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
 * client can cost at most that much memory.
 */
export class ResponseSseStream implements SseStream {
  readonly #res: ServerResponse;
  readonly #maxBufferedBytes: number;
  readonly #controller = new AbortController();
  readonly #onOverflow: (buffered: number) => void;
  readonly #metrics: SseServerMetrics;

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

  comment(text: string): void {
    this.#write(formatComment(text), 0);
  }

  /** Keeps idle connections alive through proxies; skipped while data is queued, which does the same. */
  keepAlive(): void {
    if (!this.closed.aborted && !this.#res.writableNeedDrain) this.#write(':\n\n', 0);
  }

  /** Sends a reconnect delay without ending the stream. */
  retry(retryMs: number): void {
    this.#write(`retry: ${Math.max(0, Math.floor(retryMs))}\n\n`, 0);
  }

  drained(): Promise<void> {
    if (this.closed.aborted || !this.#res.writableNeedDrain) return Promise.resolve();
    this.#metrics.paused();
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
    if (retryMs !== undefined && !this.#res.writableNeedDrain) this.retry(retryMs);
    this.#res.end();
    this.#controller.abort();
  }

  #write(text: string, events: number): boolean {
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
    this.#metrics.sent(events, Buffer.byteLength(text));
    return ok;
  }
}
