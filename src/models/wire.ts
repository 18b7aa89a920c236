/**
 * The schema registry wire format (Confluent's, which Apicurio and Karapace speak too): a magic
 * byte 0, the schema id as a 4-byte big-endian integer, then the binary value. Protobuf values
 * carry, between the id and the body, the path of their message type in the schema's file as a
 * list of zigzag varints (count, then indexes), written as the single byte 0 for the first type.
 */

export const MAGIC = 0;
export const HEADER_BYTES = 5;

export interface Framed {
  readonly id: number;
  /** What follows the header: the message indexes (protobuf) and the body. */
  readonly body: Buffer;
}

export function frame(id: number, body: Buffer, prefix?: Buffer): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt8(MAGIC, 0);
  header.writeUInt32BE(id, 1);
  return Buffer.concat(prefix === undefined ? [header, body] : [header, prefix, body]);
}

/** The id and body of a framed value; undefined when it does not start with the header. */
export function unframe(value: Buffer): Framed | undefined {
  if (value.length < HEADER_BYTES || value[0] !== MAGIC) return undefined;
  return { id: value.readUInt32BE(1), body: value.subarray(HEADER_BYTES) };
}

function zigzag(n: number): number {
  return (n << 1) ^ (n >> 31);
}

function writeVarint(out: number[], value: number): void {
  let v = value >>> 0;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
}

/** The message indexes of a protobuf type: `[0]` is written as one 0 byte. */
export function encodeMessageIndexes(indexes: readonly number[]): Buffer {
  if (indexes.length === 1 && indexes[0] === 0) return Buffer.from([0]);
  const out: number[] = [];
  writeVarint(out, zigzag(indexes.length));
  for (const index of indexes) writeVarint(out, zigzag(index));
  return Buffer.from(out);
}

/** The message indexes at the start of `body` and what follows them; undefined if truncated. */
export function decodeMessageIndexes(body: Buffer): { indexes: number[]; rest: Buffer } | undefined {
  let at = 0;
  const read = (): number | undefined => {
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const byte = body[at++];
      if (byte === undefined) return undefined;
      result |= (byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return (result >>> 1) ^ -(result & 1);
    }
    return undefined;
  };
  const count = read();
  if (count === undefined || count < 0 || count > 64) return undefined;
  if (count === 0) return { indexes: [0], rest: body.subarray(at) };
  const indexes: number[] = [];
  for (let i = 0; i < count; i++) {
    const index = read();
    if (index === undefined || index < 0) return undefined;
    indexes.push(index);
  }
  return { indexes, rest: body.subarray(at) };
}
