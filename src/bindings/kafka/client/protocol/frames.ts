import { MalformedResponseError } from '../errors.ts';
import { Cursor } from './reader.ts';

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

/**
 * The size prefix and request header written in front of a request body of `bodyLength` bytes:
 * header v1, or v2 (an empty tagged-field section) for flexible versions.
 */
export function requestHeader(
  apiKey: number,
  version: number,
  correlationId: number,
  clientId: string,
  flexible: boolean,
  bodyLength: number,
): Buffer {
  const clientIdLength = Buffer.byteLength(clientId);
  const headerLength = 4 + 2 + 2 + 4 + 2 + clientIdLength + (flexible ? 1 : 0);
  const header = Buffer.allocUnsafe(headerLength);
  header.writeInt32BE(headerLength - 4 + bodyLength, 0);
  header.writeInt16BE(apiKey, 4);
  header.writeInt16BE(version, 6);
  header.writeInt32BE(correlationId, 8);
  header.writeInt16BE(clientIdLength, 12);
  header.write(clientId, 14, 'utf8');
  if (flexible) header[headerLength - 1] = 0;
  return header;
}

/** The correlation id that opens every response frame. */
export function correlationIdOf(frame: Buffer): number {
  return frame.readInt32BE(0);
}

/** A cursor over a response's body, past its header (and the header's tagged fields when it has them). */
export function responseBody(frame: Buffer, taggedHeader: boolean): Cursor {
  const cursor = new Cursor(frame, 4);
  if (taggedHeader) cursor.taggedFields();
  return cursor;
}
