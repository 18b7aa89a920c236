import { MalformedResponseError } from '../errors.ts';

/**
 * A bounds-checked cursor over one response frame. Decoders written on it read straight from the
 * frame buffer, so record keys and values can be handed out as slices of it.
 */
export class Cursor {
  readonly buf: Buffer;
  pos: number;
  readonly end: number;

  constructor(buf: Buffer, pos = 0, end = buf.length) {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  need(bytes: number): void {
    if (bytes < 0 || this.pos + bytes > this.end) {
      throw new MalformedResponseError(
        `truncated response: needed ${bytes} bytes at ${this.pos}, ${this.end - this.pos} left`,
      );
    }
  }

  int8(): number {
    this.need(1);
    return this.buf.readInt8(this.pos++);
  }

  int16(): number {
    this.need(2);
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  int32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  uint32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  int64(): bigint {
    this.need(8);
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  /** An int64 known to fit in a double (timestamps). */
  int64Number(): number {
    this.need(8);
    const hi = this.buf.readInt32BE(this.pos);
    const lo = this.buf.readUInt32BE(this.pos + 4);
    this.pos += 8;
    return hi * 4294967296 + lo;
  }

  uvarint(): number {
    let value = 0;
    let shift = 0;
    for (;;) {
      if (this.pos >= this.end) throw new MalformedResponseError('truncated varint');
      const byte = this.buf[this.pos++] as number;
      value += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return value;
      shift += 7;
      if (shift > 49) throw new MalformedResponseError('varint too long');
    }
  }

  /** Zig-zag signed varint or varlong; values stay exact up to 2^53. */
  varint(): number {
    const raw = this.uvarint();
    return raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2;
  }

  skip(bytes: number): void {
    this.need(bytes);
    this.pos += bytes;
  }

  slice(bytes: number): Buffer {
    this.need(bytes);
    const out = this.buf.subarray(this.pos, this.pos + bytes);
    this.pos += bytes;
    return out;
  }

  string(compact: boolean): string {
    const s = this.nullableString(compact);
    if (s === null) throw new MalformedResponseError('unexpected null string');
    return s;
  }

  nullableString(compact: boolean): string | null {
    const length = compact ? this.uvarint() - 1 : this.int16();
    if (length < 0) return null;
    this.need(length);
    const s = this.buf.toString('utf8', this.pos, this.pos + length);
    this.pos += length;
    return s;
  }

  /** Array length; -1 for a null array. */
  arrayLength(compact: boolean): number {
    const n = compact ? this.uvarint() - 1 : this.int32();
    // Every element takes at least one byte, so a longer array is a lie.
    if (n > this.remaining)
      throw new MalformedResponseError(`array of ${n} elements in ${this.remaining} bytes`);
    return n;
  }

  uuid(): string {
    const b = this.slice(16);
    const hex = b.toString('hex');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  /** Skips a tagged-field section, calling `onTag` for the tags the caller understands. */
  taggedFields(onTag?: (tag: number, field: Cursor) => void): void {
    const count = this.uvarint();
    for (let i = 0; i < count; i++) {
      const tag = this.uvarint();
      const size = this.uvarint();
      this.need(size);
      if (onTag !== undefined) onTag(tag, new Cursor(this.buf, this.pos, this.pos + size));
      this.pos += size;
    }
  }
}

/** Kafka's "no topic id"; also what kgate keeps when a broker's Metadata version predates topic ids. */
export const ZERO_UUID = '00000000-0000-0000-0000-000000000000';
