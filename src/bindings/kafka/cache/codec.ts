// Binary encoding of one cached Kafka record (the LMDB value under [partition id][offset]).
// The layout is described in ./README.md; keep the two in step.

export interface RecordHeaderInput {
  name: Buffer | string;
  value: Buffer | null;
}

export interface RecordInput {
  offset: bigint;
  /** Milliseconds since the epoch; Kafka's -1 (no timestamp) is allowed. */
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers?: readonly RecordHeaderInput[];
  /** -1n or absent when the producer is neither idempotent nor transactional. */
  producerId?: bigint;
  transactional?: boolean;
  /** A transaction marker (commit/abort); its key is the marker's control key, not an application key. */
  control?: boolean;
  /** Part of an aborted transaction: stored so offsets stay dense, never indexed by key. */
  aborted?: boolean;
}

export interface CachedHeader {
  name: Buffer;
  value: Buffer | null;
}

export interface CachedRecord {
  offset: bigint;
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: readonly CachedHeader[];
  producerId: bigint;
  transactional: boolean;
  control: boolean;
  aborted: boolean;
  /** Encoded size in the store, the unit of maxBytes and of retention.bytes. */
  size: number;
}

export const FLAG_TRANSACTIONAL = 0x01;
export const FLAG_CONTROL = 0x02;
export const FLAG_ABORTED = 0x04;
export const FLAG_KEY = 0x08;
export const FLAG_VALUE = 0x10;
export const FLAG_PRODUCER = 0x20;
export const FLAG_HEADERS = 0x40;
/** Reserved for a future layout; a reader that meets it must refuse the record rather than misread it. */
export const FLAG_EXTENDED = 0x80;

/** flags (1) + timestamp (6). */
export const FIXED_PART = 7;

const NO_PRODUCER = -1n;
const NO_HEADERS: readonly CachedHeader[] = Object.freeze([]);

export function varintSize(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  return 5;
}

function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[pos++] = n;
  return pos;
}

// Decoders keep the cursor in a module variable so that a varint read returns one number and
// allocates nothing; decoding is synchronous, so no two decodes interleave.
let cursor = 0;

function readVarint(buf: Uint8Array): number {
  let pos = cursor;
  let b = buf[pos++] ?? 0;
  let n = b & 0x7f;
  let shift = 7;
  while (b & 0x80) {
    if (shift > 28) throw new Error('corrupt cached record: varint too long');
    b = buf[pos++] ?? 0;
    n += (b & 0x7f) * 2 ** shift;
    shift += 7;
  }
  cursor = pos;
  return n;
}

function headerNameSize(name: Buffer | string): number {
  return typeof name === 'string' ? Buffer.byteLength(name, 'utf8') : name.length;
}

/** Size of encodeRecord's output, so the caller can size its buffer before writing. */
export function encodedSize(r: RecordInput): number {
  let size = FIXED_PART;
  if (r.producerId !== undefined && r.producerId !== NO_PRODUCER) size += 8;
  if (r.key !== null) size += varintSize(r.key.length) + r.key.length;
  if (r.value !== null) size += varintSize(r.value.length) + r.value.length;
  const headers = r.headers;
  if (headers !== undefined && headers.length > 0) {
    size += varintSize(headers.length);
    for (const h of headers) {
      const nl = headerNameSize(h.name);
      const vl = h.value === null ? 0 : h.value.length;
      size += varintSize(nl) + nl + varintSize(h.value === null ? 0 : vl + 1) + vl;
    }
  }
  return size;
}

/** Writes r at buf[pos..] (buf must hold encodedSize(r) bytes from pos); returns the end position. */
export function encodeRecord(buf: Buffer, pos: number, r: RecordInput): number {
  let flags = 0;
  if (r.transactional === true) flags |= FLAG_TRANSACTIONAL;
  if (r.control === true) flags |= FLAG_CONTROL;
  if (r.aborted === true) flags |= FLAG_ABORTED;
  if (r.key !== null) flags |= FLAG_KEY;
  if (r.value !== null) flags |= FLAG_VALUE;
  const producerId = r.producerId;
  const hasProducer = producerId !== undefined && producerId !== NO_PRODUCER;
  if (hasProducer) flags |= FLAG_PRODUCER;
  const headers = r.headers;
  const hasHeaders = headers !== undefined && headers.length > 0;
  if (hasHeaders) flags |= FLAG_HEADERS;
  buf[pos] = flags;
  buf.writeIntLE(r.timestamp, pos + 1, 6);
  pos += FIXED_PART;
  if (hasProducer) {
    buf.writeBigInt64LE(producerId, pos);
    pos += 8;
  }
  if (r.key !== null) {
    pos = writeVarint(buf, pos, r.key.length);
    pos += r.key.copy(buf, pos);
  }
  if (r.value !== null) {
    pos = writeVarint(buf, pos, r.value.length);
    pos += r.value.copy(buf, pos);
  }
  if (hasHeaders) {
    pos = writeVarint(buf, pos, headers.length);
    for (const h of headers) {
      if (typeof h.name === 'string') {
        const nl = Buffer.byteLength(h.name, 'utf8');
        pos = writeVarint(buf, pos, nl);
        pos += buf.write(h.name, pos, nl, 'utf8');
      } else {
        pos = writeVarint(buf, pos, h.name.length);
        pos += h.name.copy(buf, pos);
      }
      if (h.value === null) {
        buf[pos++] = 0;
      } else {
        pos = writeVarint(buf, pos, h.value.length + 1);
        pos += h.value.copy(buf, pos);
      }
    }
  }
  return pos;
}

function checkFlags(flags: number): void {
  if (flags & FLAG_EXTENDED) throw new Error('cached record has an unknown format (flag 0x80)');
}

/**
 * Decodes buf[start..end) into a record whose key, value and header fields are views into buf:
 * nothing is copied, so buf must stay unchanged for as long as the record is used.
 */
export function decodeRecord(buf: Buffer, start: number, end: number, offset: bigint): CachedRecord {
  const flags = buf[start] ?? 0;
  checkFlags(flags);
  const timestamp = buf.readIntLE(start + 1, 6);
  cursor = start + FIXED_PART;
  let producerId = NO_PRODUCER;
  if (flags & FLAG_PRODUCER) {
    producerId = buf.readBigInt64LE(cursor);
    cursor += 8;
  }
  let key: Buffer | null = null;
  if (flags & FLAG_KEY) {
    const kl = readVarint(buf);
    key = buf.subarray(cursor, cursor + kl);
    cursor += kl;
  }
  let value: Buffer | null = null;
  if (flags & FLAG_VALUE) {
    const vl = readVarint(buf);
    value = buf.subarray(cursor, cursor + vl);
    cursor += vl;
  }
  let headers = NO_HEADERS;
  if (flags & FLAG_HEADERS) {
    const n = readVarint(buf);
    const list: CachedHeader[] = new Array<CachedHeader>(n);
    for (let i = 0; i < n; i++) {
      const nl = readVarint(buf);
      const name = buf.subarray(cursor, cursor + nl);
      cursor += nl;
      const vl = readVarint(buf);
      let hv: Buffer | null = null;
      if (vl > 0) {
        hv = buf.subarray(cursor, cursor + vl - 1);
        cursor += vl - 1;
      }
      list[i] = { name, value: hv };
    }
    headers = list;
  }
  if (cursor !== end)
    throw new Error(`corrupt cached record at offset ${offset}: ${end - cursor} stray bytes`);
  return {
    offset,
    timestamp,
    key,
    value,
    headers,
    producerId,
    transactional: (flags & FLAG_TRANSACTIONAL) !== 0,
    control: (flags & FLAG_CONTROL) !== 0,
    aborted: (flags & FLAG_ABORTED) !== 0,
    size: end - start,
  };
}

/** The fields maintenance needs, read without building a record. */
export function peekFlags(buf: Uint8Array, start: number): number {
  const flags = buf[start] ?? 0;
  checkFlags(flags);
  return flags;
}

export function peekTimestamp(buf: Buffer, start: number): number {
  return buf.readIntLE(start + 1, 6);
}

/**
 * Position of the key bytes of an encoded record (flags must include FLAG_KEY); the key's length
 * is left in keyLength.
 */
export let keyLength = 0;
export function peekKeyStart(buf: Uint8Array, start: number, flags: number): number {
  cursor = start + FIXED_PART + (flags & FLAG_PRODUCER ? 8 : 0);
  keyLength = readVarint(buf);
  return cursor;
}

/** True when the encoded record is a tombstone: an application key and no value. */
export function isTombstoneFlags(flags: number): boolean {
  return (flags & (FLAG_KEY | FLAG_VALUE | FLAG_CONTROL | FLAG_ABORTED)) === FLAG_KEY;
}
