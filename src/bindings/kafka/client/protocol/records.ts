import { crc32c } from '@node-rs/crc32';
import { compressionsAlgorithms, compressionsAlgorithmsByBitmask } from '@platformatic/kafka';
import { KafkaClientError, MalformedResponseError, messageOf } from '../errors.ts';
import { Cursor } from './reader.ts';
import { sizeOfUvarint, writeUvarint, zigzag } from './writer.ts';

export type Compression = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';

export interface RecordHeader {
  readonly key: string;
  readonly value: Buffer | null;
}

/** One record as fetched. key, value and header values are slices of the response (or of the decompressed batch). */
export interface KafkaRecord {
  readonly offset: bigint;
  readonly timestamp: number;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: readonly RecordHeader[];
}

export interface RecordBatch {
  readonly baseOffset: bigint;
  readonly lastOffset: bigint;
  readonly partitionLeaderEpoch: number;
  readonly producerId: bigint;
  readonly producerEpoch: number;
  readonly baseSequence: number;
  readonly transactional: boolean;
  /** Control batches carry transaction markers, never application data. */
  readonly control: boolean;
  /** For control batches: what the marker ends. */
  readonly controlType: 'commit' | 'abort' | 'other' | null;
  readonly compression: Compression;
  readonly logAppendTime: boolean;
  readonly maxTimestamp: number;
  readonly records: readonly KafkaRecord[];
}

/** A record to produce. Strings are encoded as UTF-8. */
export interface ProduceRecord {
  readonly key?: Buffer | string | null;
  readonly value: Buffer | string | null;
  readonly headers?: readonly RecordHeader[] | Readonly<Record<string, Buffer | string | null>>;
  /** Create time in ms since the epoch; now when omitted. */
  readonly timestamp?: number;
}

const COMPRESSION_BY_BITS: readonly Compression[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];
const NO_HEADERS: readonly RecordHeader[] = Object.freeze([]);
const NO_RECORDS: readonly KafkaRecord[] = Object.freeze([]);

/** Offset 0 through the records count: baseOffset 8, length 4, epoch 4, magic 1, crc 4, attributes..count 40. */
const BATCH_OVERHEAD = 61;
const LENGTH_OFFSET = 8;
const MAGIC_OFFSET = 16;
const CRC_OFFSET = 17;
const ATTRIBUTES_OFFSET = 21;

/**
 * Decodes the record batches of one partition in a Fetch response. A trailing batch cut short by
 * the broker's size limit is normal and skipped; records before `fromOffset` (earlier records of
 * a compressed batch) are dropped. Throws MalformedResponseError on corrupt bytes.
 */
export function decodeBatches(buf: Buffer, fromOffset: bigint, verifyCrc = true): RecordBatch[] {
  const batches: RecordBatch[] = [];
  let pos = 0;
  while (buf.length - pos >= 12) {
    const length = buf.readInt32BE(pos + LENGTH_OFFSET);
    if (length < BATCH_OVERHEAD - 12)
      throw new MalformedResponseError(`record batch length ${length} at ${pos}`);
    const end = pos + 12 + length;
    if (end > buf.length) break;
    batches.push(decodeBatch(buf, pos, end, fromOffset, verifyCrc));
    pos = end;
  }
  return batches;
}

function decodeBatch(
  buf: Buffer,
  start: number,
  end: number,
  fromOffset: bigint,
  verifyCrc: boolean,
): RecordBatch {
  const magic = buf.readInt8(start + MAGIC_OFFSET);
  if (magic !== 2) {
    throw new KafkaClientError(`record batch with message format v${magic}; only v2 is supported`, false);
  }
  if (verifyCrc) {
    const expected = buf.readUInt32BE(start + CRC_OFFSET);
    const actual = crc32c(buf.subarray(start + ATTRIBUTES_OFFSET, end)) >>> 0;
    if (expected !== actual)
      throw new MalformedResponseError(`record batch crc mismatch at offset ${buf.readBigInt64BE(start)}`);
  }
  const c = new Cursor(buf, start, end);
  const baseOffset = c.int64();
  c.skip(4); // length
  const partitionLeaderEpoch = c.int32();
  c.skip(5); // magic, crc
  const attributes = c.int16();
  const lastOffsetDelta = c.int32();
  const baseTimestamp = c.int64Number();
  const maxTimestamp = c.int64Number();
  const producerId = c.int64();
  const producerEpoch = c.int16();
  const baseSequence = c.int32();
  const count = c.int32();
  const compressionBits = attributes & 0x7;
  const compression = COMPRESSION_BY_BITS[compressionBits];
  if (compression === undefined) throw new MalformedResponseError(`unknown compression ${compressionBits}`);
  const logAppendTime = (attributes & 0x8) !== 0;
  const transactional = (attributes & 0x10) !== 0;
  const control = (attributes & 0x20) !== 0;

  let records: Cursor = c;
  if (compressionBits !== 0) {
    const algorithm = compressionsAlgorithmsByBitmask[compressionBits];
    if (algorithm === undefined) throw new MalformedResponseError(`unsupported compression ${compression}`);
    let inflated: Buffer;
    try {
      inflated = algorithm.decompressSync(buf.subarray(c.pos, end));
    } catch (error) {
      throw new MalformedResponseError(
        `cannot ${compression}-decompress batch at ${baseOffset}: ${messageOf(error)}`,
      );
    }
    records = new Cursor(inflated);
  }
  if (count < 0 || count > records.remaining)
    throw new MalformedResponseError(`record count ${count} in batch at ${baseOffset}`);

  let controlType: RecordBatch['controlType'] = null;
  const out: KafkaRecord[] = count === 0 ? (NO_RECORDS as KafkaRecord[]) : [];
  for (let i = 0; i < count; i++) {
    const length = records.varint();
    const recordEnd = records.pos + length;
    if (length < 0 || recordEnd > records.end)
      throw new MalformedResponseError(`record length ${length} in batch at ${baseOffset}`);
    records.skip(1); // attributes, unused
    const timestampDelta = records.varint();
    const offsetDelta = records.varint();
    const key = bytesOrNull(records);
    const value = bytesOrNull(records);
    const headerCount = records.varint();
    let headers = NO_HEADERS;
    if (headerCount > 0) {
      if (headerCount > records.remaining) throw new MalformedResponseError(`header count ${headerCount}`);
      const list: RecordHeader[] = [];
      for (let h = 0; h < headerCount; h++) {
        const keyLength = records.varint();
        records.need(keyLength);
        const headerKey = records.buf.toString('utf8', records.pos, records.pos + keyLength);
        records.pos += keyLength;
        list.push({ key: headerKey, value: bytesOrNull(records) });
      }
      headers = list;
    }
    if (records.pos !== recordEnd)
      throw new MalformedResponseError(`record at delta ${offsetDelta} has trailing bytes`);
    if (control && i === 0 && key !== null && key.length >= 4) {
      const type = key.readInt16BE(2);
      controlType = type === 0 ? 'abort' : type === 1 ? 'commit' : 'other';
    }
    const offset = baseOffset + BigInt(offsetDelta);
    if (offset < fromOffset) continue;
    out.push({
      offset,
      timestamp: logAppendTime ? maxTimestamp : baseTimestamp + timestampDelta,
      key,
      value,
      headers,
    });
  }
  return {
    baseOffset,
    lastOffset: baseOffset + BigInt(lastOffsetDelta),
    partitionLeaderEpoch,
    producerId,
    producerEpoch,
    baseSequence,
    transactional,
    control,
    controlType,
    compression,
    logAppendTime,
    maxTimestamp,
    records: out,
  };
}

function bytesOrNull(c: Cursor): Buffer | null {
  const length = c.varint();
  if (length < 0) return null;
  return c.slice(length);
}

export interface BatchOptions {
  readonly producerId: bigint;
  readonly producerEpoch: number;
  readonly baseSequence: number;
  readonly compression: Compression;
  readonly now: number;
}

interface EncodedRecord {
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: readonly (readonly [Buffer, Buffer | null])[];
  readonly timestamp: number;
}

function toBytes(value: Buffer | string | null | undefined): Buffer | null {
  if (value === null || value === undefined) return null;
  return typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
}

function normalize(record: ProduceRecord, now: number): EncodedRecord {
  const headers: (readonly [Buffer, Buffer | null])[] = [];
  const source = record.headers;
  if (source !== undefined) {
    if (Array.isArray(source)) {
      for (const header of source as readonly RecordHeader[])
        headers.push([Buffer.from(header.key, 'utf8'), header.value]);
    } else {
      for (const [key, value] of Object.entries(source as Readonly<Record<string, Buffer | string | null>>)) {
        headers.push([Buffer.from(key, 'utf8'), toBytes(value)]);
      }
    }
  }
  return {
    key: toBytes(record.key),
    value: toBytes(record.value),
    headers,
    timestamp: record.timestamp ?? now,
  };
}

function sizeOfBytes(value: Buffer | null): number {
  return value === null ? 1 : sizeOfUvarint(zigzag(value.length)) + value.length;
}

/** Bytes of a record's key and headers in a batch, with their lengths and the header count. */
function keyAndHeadersSize(record: EncodedRecord): number {
  let size = sizeOfBytes(record.key) + sizeOfUvarint(zigzag(record.headers.length));
  for (const [key, value] of record.headers) size += sizeOfBytes(key) + sizeOfBytes(value);
  return size;
}

/** Bytes of a key, value or header part with its length, measured without encoding it. */
function sizeOfField(value: Buffer | string | null | undefined): number {
  if (value === null || value === undefined) return 1;
  const length = typeof value === 'string' ? Buffer.byteLength(value, 'utf8') : value.length;
  return sizeOfUvarint(zigzag(length)) + length;
}

/**
 * keyAndHeadersSize of the record `record` encodes to, measured on the record as given: sizing
 * runs for every call (staging, merging), so it copies no key or header into a buffer.
 */
function envelopeSize(record: RecordEnvelope): number {
  let size = sizeOfField(record.key);
  let count = 0;
  const source = record.headers;
  if (source !== undefined) {
    if (Array.isArray(source)) {
      for (const header of source as readonly RecordHeader[]) {
        size += sizeOfField(header.key) + sizeOfField(header.value);
        count++;
      }
    } else {
      const named = source as Readonly<Record<string, Buffer | string | null>>;
      for (const key of Object.keys(named)) {
        size += sizeOfField(key) + sizeOfField(named[key]);
        count++;
      }
    }
  }
  return size + sizeOfUvarint(zigzag(count));
}

/**
 * A record's body in a batch (what its length prefix counts): attributes, the timestamp and
 * offset deltas, key, value and headers.
 */
function recordBodySize(
  fixed: number,
  valueBytes: number | null,
  timestampDelta: number,
  index: number,
): number {
  const value = valueBytes === null ? 1 : sizeOfUvarint(zigzag(valueBytes)) + valueBytes;
  return 1 + sizeOfUvarint(zigzag(timestampDelta)) + sizeOfUvarint(zigzag(index)) + fixed + value;
}

/** The parts of a record known before its value. */
export type RecordEnvelope = Omit<ProduceRecord, 'value' | 'timestamp'>;

/**
 * The size of the uncompressed record batch that carries `record` alone with a value of
 * `valueBytes` (null: a tombstone): the batch header, then the record with its varint lengths.
 * It is what a broker compares with the topic's max.message.bytes.
 */
export function singleRecordBatchSize(record: RecordEnvelope, valueBytes: number | null): number {
  const fixed = envelopeSize(record);
  const body = recordBodySize(fixed, valueBytes, 0, 0);
  return BATCH_OVERHEAD + sizeOfUvarint(zigzag(body)) + body;
}

/**
 * The largest value `record` can carry in a batch of its own that a broker with
 * max.message.bytes `limit` accepts; -1 when not even an empty value fits.
 */
export function largestSingleRecordValue(record: RecordEnvelope, limit: number): number {
  const fixed = envelopeSize(record);
  const size = (valueBytes: number): number => {
    const body = recordBodySize(fixed, valueBytes, 0, 0);
    return BATCH_OVERHEAD + sizeOfUvarint(zigzag(body)) + body;
  };
  // Every varint takes at least one byte, so this is an upper bound; the varints of a value
  // this large take at most a few bytes more, so few steps down are needed.
  let value = limit - BATCH_OVERHEAD - (3 + fixed) - 2;
  while (value >= 0 && size(value) > limit) value--;
  return Math.max(value, -1);
}

/**
 * At most the bytes `records` add to a batch they share with others: their sizes with the
 * largest timestamp and offset deltas a batch can give them.
 */
export function recordsSizeBound(records: readonly ProduceRecord[]): number {
  let size = 0;
  for (const record of records) {
    const value = record.value;
    const valueBytes =
      value === null ? null : typeof value === 'string' ? Buffer.byteLength(value, 'utf8') : value.length;
    const body = recordBodySize(envelopeSize(record), valueBytes, 0, 0) + 9 + 4;
    size += sizeOfUvarint(zigzag(body)) + body;
  }
  return size;
}

/** The header every record batch starts with, before its records. */
export const RECORD_BATCH_OVERHEAD = BATCH_OVERHEAD;

function writeBytes(buf: Buffer, pos: number, value: Buffer | null): number {
  if (value === null) return writeUvarint(buf, pos, 1);
  pos = writeUvarint(buf, pos, zigzag(value.length));
  value.copy(buf, pos);
  return pos + value.length;
}

/**
 * Encodes one v2 record batch (base offset 0: the broker assigns offsets). Sizes are computed
 * first so every key and value is copied exactly once, into the request buffer.
 */
export function encodeBatch(input: readonly ProduceRecord[], options: BatchOptions): Buffer {
  const records = input.map((record) => normalize(record, options.now));
  const first = records[0];
  if (first === undefined) throw new Error('a record batch needs at least one record');
  const baseTimestamp = first.timestamp;
  let maxTimestamp = baseTimestamp;
  const bodies: number[] = [];
  let recordsSize = 0;
  for (let i = 0; i < records.length; i++) {
    const r = records[i] as EncodedRecord;
    if (r.timestamp > maxTimestamp) maxTimestamp = r.timestamp;
    const size = recordBodySize(
      keyAndHeadersSize(r),
      r.value === null ? null : r.value.length,
      r.timestamp - baseTimestamp,
      i,
    );
    bodies.push(size);
    recordsSize += sizeOfUvarint(zigzag(size)) + size;
  }
  let section: Buffer = Buffer.allocUnsafe(recordsSize);
  let pos = 0;
  for (let i = 0; i < records.length; i++) {
    const r = records[i] as EncodedRecord;
    pos = writeUvarint(section, pos, zigzag(bodies[i] as number));
    section[pos++] = 0;
    pos = writeUvarint(section, pos, zigzag(r.timestamp - baseTimestamp));
    pos = writeUvarint(section, pos, zigzag(i));
    pos = writeBytes(section, pos, r.key);
    pos = writeBytes(section, pos, r.value);
    pos = writeUvarint(section, pos, zigzag(r.headers.length));
    for (const [key, value] of r.headers) {
      pos = writeBytes(section, pos, key);
      pos = writeBytes(section, pos, value);
    }
  }
  let attributes = 0;
  if (options.compression !== 'none') {
    const algorithm = compressionsAlgorithms[options.compression];
    section = algorithm.compressSync(section);
    attributes |= algorithm.bitmask;
  }
  const batch = Buffer.allocUnsafe(BATCH_OVERHEAD + section.length);
  batch.writeBigInt64BE(0n, 0);
  batch.writeInt32BE(batch.length - 12, LENGTH_OFFSET);
  batch.writeInt32BE(-1, 12); // partition leader epoch: set by the broker
  batch.writeInt8(2, MAGIC_OFFSET);
  batch.writeInt16BE(attributes, ATTRIBUTES_OFFSET);
  batch.writeInt32BE(records.length - 1, 23);
  batch.writeBigInt64BE(BigInt(baseTimestamp), 27);
  batch.writeBigInt64BE(BigInt(maxTimestamp), 35);
  batch.writeBigInt64BE(options.producerId, 43);
  batch.writeInt16BE(options.producerEpoch, 51);
  batch.writeInt32BE(options.baseSequence, 53);
  batch.writeInt32BE(records.length, 57);
  section.copy(batch, BATCH_OVERHEAD);
  batch.writeUInt32BE(crc32c(batch.subarray(ATTRIBUTES_OFFSET)) >>> 0, CRC_OFFSET);
  return batch;
}

/**
 * Drops batches of aborted transactions (read_committed). `aborted` is the Fetch response's list
 * of (producer id, first offset); a producer's batches are aborted from its first offset up to its
 * ABORT marker. Control batches are kept so callers can advance past them.
 */
export function dropAborted(
  batches: RecordBatch[],
  aborted: readonly { readonly producerId: bigint; readonly firstOffset: bigint }[],
): RecordBatch[] {
  if (aborted.length === 0) return batches;
  const pending = [...aborted].sort((a, b) =>
    a.firstOffset < b.firstOffset ? -1 : a.firstOffset > b.firstOffset ? 1 : 0,
  );
  const abortedProducers = new Set<bigint>();
  let next = 0;
  const kept: RecordBatch[] = [];
  for (const batch of batches) {
    while (
      next < pending.length &&
      (pending[next] as { firstOffset: bigint }).firstOffset <= batch.lastOffset
    ) {
      abortedProducers.add((pending[next] as { producerId: bigint }).producerId);
      next++;
    }
    if (batch.control) {
      if (batch.controlType === 'abort') abortedProducers.delete(batch.producerId);
      kept.push(batch);
      continue;
    }
    if (batch.transactional && abortedProducers.has(batch.producerId)) continue;
    kept.push(batch);
  }
  return kept;
}
