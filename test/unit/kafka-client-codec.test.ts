import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { decodeApiVersions } from '../../src/bindings/kafka/client/apis/api-versions.ts';
import { decodeFetch } from '../../src/bindings/kafka/client/apis/fetch.ts';
import { Api, negotiateVersions } from '../../src/bindings/kafka/client/apis/index.ts';
import { decodeMetadata } from '../../src/bindings/kafka/client/apis/metadata.ts';
import { decodeProduce, encodeProduce } from '../../src/bindings/kafka/client/apis/produce.ts';
import { KafkaProtocolError, MalformedResponseError } from '../../src/bindings/kafka/client/index.ts';
import { FrameDecoder } from '../../src/bindings/kafka/client/protocol/frames.ts';
import { Cursor } from '../../src/bindings/kafka/client/protocol/reader.ts';
import {
  type Compression,
  decodeBatches,
  dropAborted,
  encodeBatch,
  largestSingleRecordValue,
  recordsSizeBound,
  RECORD_BATCH_OVERHEAD,
  singleRecordBatchSize,
  type ProduceRecord,
  type RecordEnvelope,
} from '../../src/bindings/kafka/client/protocol/records.ts';

/** Tiny big-endian builder for hand-made broker responses. */
class Bytes {
  readonly parts: Buffer[] = [];
  i8(v: number): this {
    const b = Buffer.alloc(1);
    b.writeInt8(v);
    return this.push(b);
  }
  i16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeInt16BE(v);
    return this.push(b);
  }
  i32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32BE(v);
    return this.push(b);
  }
  i64(v: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(v);
    return this.push(b);
  }
  uvar(v: number): this {
    const out: number[] = [];
    while (v >= 0x80) {
      out.push((v & 0x7f) | 0x80);
      v >>>= 7;
    }
    out.push(v);
    return this.push(Buffer.from(out));
  }
  str(s: string): this {
    const b = Buffer.from(s);
    return this.i16(b.length).push(b);
  }
  cstr(s: string): this {
    const b = Buffer.from(s);
    return this.uvar(b.length + 1).push(b);
  }
  push(b: Buffer): this {
    this.parts.push(b);
    return this;
  }
  build(): Buffer {
    return Buffer.concat(this.parts);
  }
}

function fetchV4(errorCode: number, records: Buffer | null, aborted: [bigint, bigint][] = []): Buffer {
  const b = new Bytes().i32(0).i32(1).str('topic').i32(1);
  b.i32(0).i16(errorCode).i64(10n).i64(10n).i32(aborted.length);
  for (const [pid, first] of aborted) b.i64(pid).i64(first);
  if (records === null) b.i32(-1);
  else b.i32(records.length).push(records);
  return b.build();
}

function withBaseOffset(batch: Buffer, offset: bigint): Buffer {
  const copy = Buffer.from(batch);
  copy.writeBigInt64BE(offset, 0);
  return copy;
}

const options = {
  producerId: -1n,
  producerEpoch: -1,
  baseSequence: -1,
  compression: 'none' as Compression,
  now: 1_700_000_000_000,
};

describe('kafka client frames', () => {
  it('splits frames across chunks and hands out single-chunk frames as slices', () => {
    const frames: Buffer[] = [];
    const decoder = new FrameDecoder(1024, (f) => frames.push(f));
    const a = Buffer.from([0, 0, 0, 4, 1, 2, 3, 4, 0, 0]);
    const b = Buffer.from([0, 5, 9, 9, 9, 9, 9]);
    decoder.push(a);
    decoder.push(b);
    assert.equal(frames.length, 2);
    assert.deepEqual([...(frames[0] ?? [])], [1, 2, 3, 4]);
    assert.equal(frames[0]?.buffer, a.buffer);
    assert.deepEqual([...(frames[1] ?? [])], [9, 9, 9, 9, 9]);
  });

  it('rejects impossible frame sizes instead of waiting forever or allocating them', () => {
    const decoder = new FrameDecoder(1024, () => undefined);
    assert.throws(() => decoder.push(Buffer.from([0xff, 0xff, 0xff, 0xff])), MalformedResponseError);
    const small = new FrameDecoder(1024, () => undefined);
    assert.throws(() => small.push(Buffer.from([0, 0, 0x10, 0])), MalformedResponseError);
  });
});

describe('kafka client record batches', () => {
  it('round-trips keys, values, headers and nulls, values as slices of the response', () => {
    const value = Buffer.alloc(100 * 1024, 7);
    const batch = encodeBatch(
      [
        {
          key: 'k',
          value,
          headers: [
            { key: 'h1', value: Buffer.from('v1') },
            { key: 'h2', value: null },
          ],
        },
        { key: null, value: null, timestamp: 1_700_000_000_500 },
        { value: 'x', headers: { a: 'b' } },
      ],
      options,
    );
    const decoded = decodeBatches(batch, 0n)[0];
    if (decoded === undefined) throw new Error('no batch');
    assert.equal(decoded.records.length, 3);
    const [r0, r1, r2] = decoded.records;
    assert.equal(r0?.key?.toString(), 'k');
    assert.ok(r0?.value?.equals(value));
    assert.equal(r0?.value?.buffer, batch.buffer, 'value is a slice, not a copy');
    assert.deepEqual(
      r0?.headers.map((h) => [h.key, h.value?.toString() ?? null]),
      [
        ['h1', 'v1'],
        ['h2', null],
      ],
    );
    assert.equal(r1?.key, null);
    assert.equal(r1?.value, null);
    assert.equal(r1?.timestamp, 1_700_000_000_500);
    assert.equal(r1?.offset, 1n);
    assert.equal(r2?.value?.toString(), 'x');
    assert.equal(decoded.lastOffset, 2n);
  });

  for (const compression of ['gzip', 'snappy', 'lz4', 'zstd'] as const) {
    it(`round-trips ${compression} batches`, () => {
      const batch = encodeBatch([{ key: 'a', value: 'b'.repeat(1000) }, { value: 'c' }], {
        ...options,
        compression,
      });
      const [decoded] = decodeBatches(batch, 0n);
      assert.equal(decoded?.compression, compression);
      assert.equal(decoded?.records[0]?.value?.toString(), 'b'.repeat(1000));
      assert.equal(decoded?.records[1]?.value?.toString(), 'c');
    });
  }

  it('skips a trailing partial batch and records before the fetch offset', () => {
    const one = withBaseOffset(encodeBatch([{ value: 'a' }, { value: 'b' }], options), 5n);
    const two = withBaseOffset(encodeBatch([{ value: 'c' }], options), 7n);
    const buf = Buffer.concat([one, two.subarray(0, two.length - 3)]);
    const batches = decodeBatches(buf, 6n);
    assert.equal(batches.length, 1);
    assert.deepEqual(
      batches[0]?.records.map((r) => r.offset),
      [6n],
    );
  });

  it('reports corrupt batches as malformed, never crashing', () => {
    const batch = encodeBatch([{ value: 'hello' }], options);
    const corrupt = Buffer.from(batch);
    corrupt.writeUInt8((corrupt.readUInt8(corrupt.length - 2) ^ 0xff) & 0xff, corrupt.length - 2);
    assert.throws(() => decodeBatches(corrupt, 0n), MalformedResponseError);
    const badCount = Buffer.from(batch);
    badCount.writeInt32BE(1_000_000, 57);
    assert.throws(() => decodeBatches(badCount, 0n, false), MalformedResponseError);
    const badLength = Buffer.from(batch);
    badLength.writeInt32BE(3, 8);
    assert.throws(() => decodeBatches(badLength, 0n), MalformedResponseError);
  });

  it('drops aborted transactions and keeps committed ones and markers', () => {
    const txn = (pid: bigint, offset: bigint, value: string): Buffer => {
      const b = withBaseOffset(
        encodeBatch([{ value }], { ...options, producerId: pid, producerEpoch: 0, baseSequence: 0 }),
        offset,
      );
      b.writeInt16BE(0x10, 21); // transactional
      return b;
    };
    const marker = (pid: bigint, offset: bigint, type: number): Buffer => {
      const key = Buffer.alloc(4);
      key.writeInt16BE(type, 2);
      const b = withBaseOffset(
        encodeBatch([{ key, value: Buffer.alloc(6) }], {
          ...options,
          producerId: pid,
          producerEpoch: 0,
          baseSequence: -1,
        }),
        offset,
      );
      b.writeInt16BE(0x30, 21); // transactional + control
      return b;
    };
    const buf = Buffer.concat([
      txn(1n, 0n, 'aborted'),
      txn(2n, 1n, 'committed'),
      marker(1n, 2n, 0),
      marker(2n, 3n, 1),
      txn(1n, 4n, 'later'),
    ]);
    const all = decodeBatches(buf, 0n, false);
    const kept = dropAborted(all, [{ producerId: 1n, firstOffset: 0n }]);
    const values = kept.filter((b) => !b.control).flatMap((b) => b.records.map((r) => r.value?.toString()));
    assert.deepEqual(values, ['committed', 'later']);
    assert.deepEqual(
      kept.filter((b) => b.control).map((b) => b.controlType),
      ['abort', 'commit'],
    );
  });
});

describe('record batch sizes, as a broker counts them against max.message.bytes', () => {
  const options = { producerId: 7n, producerEpoch: 1, baseSequence: 0, compression: 'none', now: 0 } as const;
  // Around the sizes where a varint length takes one more byte: 63/64, 8191/8192, 1048575/1048576.
  const VALUE_SIZES = [0, 1, 62, 63, 64, 65, 8190, 8191, 8192, 8193, 1_048_575, 1_048_576];
  const ENVELOPES: readonly RecordEnvelope[] = [
    {},
    { key: 'k' },
    { key: Buffer.alloc(63, 1), headers: { 'content-type': 'application/json' } },
    { key: Buffer.alloc(64, 1), headers: [{ key: 'h'.repeat(70), value: Buffer.alloc(9000) }] },
    {
      headers: [
        { key: 'a', value: null },
        ...Array.from({ length: 70 }, (_, i) => ({ key: `h${i}`, value: null })),
      ],
    },
    // Strings are measured without being encoded: multi-byte characters and a lone surrogate.
    { key: 'clé-✓-\ud800', headers: { 'x-ü': 'wert-ä😀', empty: null, raw: Buffer.alloc(3) } },
    { key: null, headers: [{ key: 'ñ', value: Buffer.from('é') }] },
  ];

  it('sizes the batch one record makes exactly as it is encoded, tombstones included', () => {
    for (const envelope of ENVELOPES) {
      for (const size of VALUE_SIZES) {
        const record: ProduceRecord = { ...envelope, value: Buffer.alloc(size, 2) };
        assert.equal(singleRecordBatchSize(envelope, size), encodeBatch([record], options).length, `${size}`);
      }
      assert.equal(
        singleRecordBatchSize(envelope, null),
        encodeBatch([{ ...envelope, value: null }], options).length,
      );
    }
  });

  it('finds the largest value a limit takes, and the next byte up passes it', () => {
    for (const envelope of ENVELOPES) {
      for (const limit of [10_000, 16_384, 1_048_588, 2 * 1024 * 1024]) {
        const value = largestSingleRecordValue(envelope, limit);
        assert.ok(singleRecordBatchSize(envelope, value) <= limit, `${value} fits ${limit}`);
        assert.ok(singleRecordBatchSize(envelope, value + 1) > limit, `${value + 1} passes ${limit}`);
      }
    }
    // The case: a 10,000-byte limit takes a 9,870-byte value with a short key and one header.
    const envelope = { key: 'item-1', headers: { 'content-type': 'application/octet-stream' } };
    assert.ok(largestSingleRecordValue(envelope, 10_000) >= 9_870);
    assert.equal(largestSingleRecordValue({ key: Buffer.alloc(10_000) }, 10_000), -1);
  });

  it('bounds what records add to a shared batch, whatever their timestamps', () => {
    const records: ProduceRecord[] = Array.from({ length: 200 }, (_, i) => ({
      key: `k${i}`,
      value: i % 2 === 0 ? Buffer.alloc(i * 37) : 'é'.repeat(i * 19),
      headers: { h: 'v' },
      timestamp: 1_700_000_000_000 + i * 997_000,
    }));
    const encoded = encodeBatch(records, options).length;
    assert.ok(RECORD_BATCH_OVERHEAD + recordsSizeBound(records) >= encoded);
    assert.ok(RECORD_BATCH_OVERHEAD + recordsSizeBound(records) - encoded <= 14 * records.length);
  });
});

describe('kafka client responses', () => {
  it('decodes a Fetch v4 response, records as a slice of the frame', () => {
    const batch = encodeBatch([{ value: 'v' }], options);
    const frame = fetchV4(0, batch, [[3n, 0n]]);
    const response = decodeFetch(new Cursor(frame), 4);
    const [p] = response.partitions;
    assert.equal(p?.topic, 'topic');
    assert.equal(p?.highWatermark, 10n);
    assert.deepEqual(p?.abortedTransactions, [{ producerId: 3n, firstOffset: 0n }]);
    assert.equal(p?.records?.buffer, frame.buffer);
  });

  it('gives truncated responses as errors at every cut', () => {
    const frame = fetchV4(0, encodeBatch([{ value: 'v' }], options));
    for (let cut = 0; cut < frame.length - 1; cut++) {
      try {
        const response = decodeFetch(new Cursor(frame.subarray(0, cut)), 4);
        // A cut inside the records is only visible when decoding the batches.
        const records = response.partitions[0]?.records;
        if (records) decodeBatches(records, 0n);
        assert.fail(`cut at ${cut} decoded`);
      } catch (error) {
        assert.ok(error instanceof MalformedResponseError, `cut ${cut}: ${String(error)}`);
      }
    }
  });

  it('returns unknown error codes instead of throwing, and names them', () => {
    const response = decodeFetch(new Cursor(fetchV4(9999, null)), 4);
    assert.equal(response.partitions[0]?.errorCode, 9999);
    const error = new KafkaProtocolError(9999, 'Fetch t-0');
    assert.match(error.message, /UNKNOWN_ERROR_CODE_9999/);
    assert.equal(error.retriable, false);
    assert.equal(new KafkaProtocolError(6, 'x').retriable, true);
    assert.equal(new KafkaProtocolError(29, 'x').retriable, false);
  });

  it('decodes flexible Fetch (v12) with tagged fields', () => {
    const batch = encodeBatch([{ value: 'v' }], options);
    const b = new Bytes().i32(0).i16(0).i32(0).uvar(2).cstr('t').uvar(2);
    b.i32(3)
      .i16(0)
      .i64(1n)
      .i64(1n)
      .i64(0n)
      .uvar(0)
      .i32(-1)
      .uvar(batch.length + 1)
      .push(batch);
    b.uvar(1).uvar(1).uvar(8).i32(2).i32(5); // tag 1: current leader
    b.uvar(0).uvar(0);
    const response = decodeFetch(new Cursor(b.build()), 12);
    assert.equal(response.partitions[0]?.partition, 3);
    assert.equal(response.partitions[0]?.leaderId, 2);
    assert.equal(decodeBatches(response.partitions[0]?.records ?? Buffer.alloc(0), 0n).length, 1);
  });

  it('rejects arrays longer than the bytes left', () => {
    const b = new Bytes().i32(0).i32(1_000_000).build();
    assert.throws(() => decodeFetch(new Cursor(b), 4), MalformedResponseError);
    assert.throws(
      () => decodeMetadata(new Cursor(Buffer.from([0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff])), 3),
      MalformedResponseError,
    );
  });

  it('encodes Produce requests and decodes their responses for old and flexible versions', () => {
    const batch = encodeBatch([{ value: 'v' }], options);
    for (const version of [3, 9]) {
      const request = Buffer.concat(
        encodeProduce(version, -1, 1000, [{ topic: 't', partitions: [{ partition: 1, batch }] }]),
      );
      assert.ok(request.includes(batch));
    }
    const v3 = new Bytes().i32(1).str('t').i32(1).i32(1).i16(0).i64(42n).i64(-1n).i32(0).build();
    assert.deepEqual(decodeProduce(new Cursor(v3), 3)[0]?.baseOffset, 42n);
    const v9 = new Bytes()
      .uvar(2)
      .cstr('t')
      .uvar(2)
      .i32(1)
      .i16(10)
      .i64(-1n)
      .i64(-1n)
      .i64(0n)
      .uvar(1)
      .uvar(0)
      .uvar(0)
      .uvar(0)
      .i32(0)
      .uvar(0)
      .build();
    const [r] = decodeProduce(new Cursor(v9), 9);
    assert.equal(r?.errorCode, 10);
  });

  it('negotiates the highest version both sides share, and nothing when ranges miss', () => {
    const chosen = negotiateVersions([
      { apiKey: 1, minVersion: 4, maxVersion: 18 },
      { apiKey: 0, minVersion: 3, maxVersion: 9 },
      { apiKey: 3, minVersion: 13, maxVersion: 14 },
    ]);
    assert.equal(chosen.get(1), 17);
    assert.equal(chosen.get(0), 9);
    assert.equal(chosen.has(3), false);
  });

  it("reads every API's version range off its one table of codecs", () => {
    const ranges = Object.values(Api).map((api) => [api.name, api.key, api.min, api.max, api.flexibleFrom]);
    assert.deepEqual(ranges, [
      ['Produce', 0, 3, 11, 9],
      ['Fetch', 1, 4, 17, 12],
      ['ListOffsets', 2, 1, 9, 6],
      ['Metadata', 3, 4, 12, 9],
      ['SaslHandshake', 17, 1, 1, 99],
      ['ApiVersions', 18, 0, 4, 3],
      ['InitProducerId', 22, 0, 5, 2],
      ['DescribeConfigs', 32, 1, 4, 4],
      ['SaslAuthenticate', 36, 0, 2, 2],
    ]);
    for (const api of Object.values(Api)) {
      for (let version = api.min; version <= api.max; version++) assert.ok(api.codec(version));
      assert.throws(() => api.codec(api.max + 1), /is not implemented/);
      assert.throws(() => api.codec(api.min - 1), /is not implemented/);
    }
  });

  it('reads an UNSUPPORTED_VERSION ApiVersions answer in the v0 layout', () => {
    const b = new Bytes().i16(35).i32(1).i16(18).i16(0).i16(2).build();
    const response = decodeApiVersions(new Cursor(b), 4);
    assert.equal(response.errorCode, 35);
    assert.deepEqual(response.apiKeys, [{ apiKey: 18, minVersion: 0, maxVersion: 2 }]);
  });
});
