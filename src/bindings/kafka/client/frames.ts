import { MalformedResponseError } from './errors.ts';

/**
 * Splits a broker's byte stream into size-prefixed frames. A frame that arrived in one chunk is
 * handed out as a slice of that chunk; only frames spread over several chunks are copied, once.
 */
export class FrameDecoder {
  readonly #maxFrameBytes: number;
  readonly #onFrame: (frame: Buffer) => void;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #expected = -1;

  constructor(maxFrameBytes: number, onFrame: (frame: Buffer) => void) {
    this.#maxFrameBytes = maxFrameBytes;
    this.#onFrame = onFrame;
  }

  /** Throws MalformedResponseError on an impossible size; the caller must drop the connection. */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    for (;;) {
      if (this.#expected < 0) {
        if (this.#buffered < 4) return;
        const size = this.#take(4).readInt32BE(0);
        // A response holds at least its correlation id.
        if (size < 4 || size > this.#maxFrameBytes) {
          throw new MalformedResponseError(`broker sent a frame of ${size} bytes`);
        }
        this.#expected = size;
      }
      if (this.#buffered < this.#expected) return;
      const frame = this.#take(this.#expected);
      this.#expected = -1;
      this.#onFrame(frame);
    }
  }

  #take(length: number): Buffer {
    const first = this.#chunks[0];
    if (first === undefined) throw new MalformedResponseError('frame decoder underflow');
    this.#buffered -= length;
    if (first.length > length) {
      this.#chunks[0] = first.subarray(length);
      return first.subarray(0, length);
    }
    if (first.length === length) {
      this.#chunks.shift();
      return first;
    }
    const out = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const chunk = this.#chunks[0];
      if (chunk === undefined) throw new MalformedResponseError('frame decoder underflow');
      const needed = length - filled;
      if (chunk.length <= needed) {
        chunk.copy(out, filled);
        filled += chunk.length;
        this.#chunks.shift();
      } else {
        chunk.copy(out, filled, 0, needed);
        this.#chunks[0] = chunk.subarray(needed);
        filled += needed;
      }
    }
    return out;
  }
}
