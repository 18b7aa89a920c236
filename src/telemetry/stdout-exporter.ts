import type { Writable } from 'node:stream';
import type { EventSink } from './events.ts';

/** Event text kgate holds for a reader of standard output that does not keep up, before dropping lines. */
export const MAX_QUEUED_EVENT_BYTES = 1024 * 1024;

/**
 * Writes event lines to standard output (a Zilla `stdout` exporter). Lines raised in one turn of
 * the event loop go out in one write; when what the stream has not written yet passes
 * MAX_QUEUED_EVENT_BYTES (nobody reads the pipe), lines are dropped and counted instead of
 * growing kgate's memory.
 */
export class StdoutExporter implements EventSink {
  readonly #out: Writable;
  readonly #onDropped: (lines: number) => void;
  #pending: string[] = [];
  #scheduled = false;

  constructor(out: Writable, onDropped: (lines: number) => void) {
    this.#out = out;
    this.#onDropped = onDropped;
  }

  write(line: string): void {
    this.#pending.push(line);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.flush());
  }

  /** Writes what is pending now; the last lines before an exit need it. */
  flush(): void {
    this.#scheduled = false;
    const lines = this.#pending;
    if (lines.length === 0) return;
    this.#pending = [];
    if (this.#out.writableLength > MAX_QUEUED_EVENT_BYTES || this.#out.destroyed) {
      this.#onDropped(lines.length);
      return;
    }
    this.#out.write(lines.join(''));
  }
}
