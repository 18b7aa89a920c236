import type { ServerResponse } from 'node:http';
import type { SseEvent, SseStream } from '../north.ts';

const LINE_BREAK = /\r\n|\r|\n/;

/**
 * One event in `text/event-stream` framing. Data is split on every kind of line break since a bare
 * CR ends a line for the browser too; the blank line dispatches the event. An empty `data` gives an
 * event browsers do not dispatch (the format has no way to say "empty"), but it does move their last
 * event ID along.
 */
export function formatEvent(event: SseEvent): string {
  let text = '';
  if (event.id !== undefined) {
    if (LINE_BREAK.test(event.id) || event.id.includes('\0')) {
      throw new TypeError('an event id must not contain a line break or NUL');
    }
    text += `id: ${event.id}\n`;
  }
  if (event.type !== undefined) {
    if (LINE_BREAK.test(event.type)) throw new TypeError('an event type must not contain a line break');
    text += `event: ${event.type}\n`;
  }
  for (const line of event.data.split(LINE_BREAK)) text += `data: ${line}\n`;
  return `${text}\n`;
}

export function formatComment(comment: string): string {
  return comment
    .split(LINE_BREAK)
    .map((line) => (line === '' ? ':\n' : `: ${line}\n`))
    .join('');
}

/**
 * An SseStream over an HTTP response whose headers are out. Writes go straight to the response;
 * `send` reports false once the socket's buffer is past its high-water mark, and a producer that
 * carries on regardless until `maxBufferedBytes` are queued has the stream cut, so that one slow
 * client can cost at most that much memory.
 */
export class ResponseSseStream implements SseStream {
  readonly #res: ServerResponse;
  readonly #maxBufferedBytes: number;
  readonly #controller = new AbortController();
  readonly #onOverflow: (buffered: number) => void;

  constructor(res: ServerResponse, maxBufferedBytes: number, onOverflow: (buffered: number) => void) {
    this.#res = res;
    this.#maxBufferedBytes = maxBufferedBytes;
    this.#onOverflow = onOverflow;
    res.once('close', () => this.#controller.abort());
  }

  get closed(): AbortSignal {
    return this.#controller.signal;
  }

  /** Bytes queued for the client and not yet handed to the kernel. */
  get buffered(): number {
    return this.#res.writableLength;
  }

  send(event: SseEvent): boolean {
    return this.#write(formatEvent(event));
  }

  comment(text: string): void {
    this.#write(formatComment(text));
  }

  /** Keeps idle connections alive through proxies; skipped while data is queued, which does the same. */
  keepAlive(): void {
    if (!this.closed.aborted && !this.#res.writableNeedDrain) this.#write(':\n\n');
  }

  /** Sends a reconnect delay without ending the stream. */
  retry(retryMs: number): void {
    this.#write(`retry: ${Math.max(0, Math.floor(retryMs))}\n\n`);
  }

  drained(): Promise<void> {
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
    if (retryMs !== undefined && !this.#res.writableNeedDrain) this.retry(retryMs);
    this.#res.end();
    this.#controller.abort();
  }

  #write(text: string): boolean {
    if (this.closed.aborted) return false;
    const buffered = this.#res.writableLength;
    if (buffered > this.#maxBufferedBytes) {
      this.#onOverflow(buffered);
      this.#res.destroy();
      this.#controller.abort();
      return false;
    }
    return this.#res.write(text);
  }
}
