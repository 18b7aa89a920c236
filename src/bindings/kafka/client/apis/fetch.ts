import {
  fetchV4,
  fetchV5,
  fetchV6,
  fetchV7,
  fetchV8,
  fetchV9,
  fetchV10,
  fetchV11,
  fetchV12,
  fetchV13,
  fetchV14,
  fetchV15,
  fetchV16,
  fetchV17,
  type Writer,
} from '@platformatic/kafka';
import type { Cursor } from '../protocol/reader.ts';
import { defineApi, libraryVersions } from './api.ts';

export interface FetchPartitionRequest {
  readonly partition: number;
  readonly fetchOffset: bigint;
  readonly maxBytes: number;
}

export interface FetchTopicRequest {
  /** Topic name before v13, topic id from v13 on. */
  readonly topic: string;
  readonly partitions: readonly FetchPartitionRequest[];
}

export interface FetchRequest {
  readonly maxWaitMs: number;
  readonly minBytes: number;
  readonly maxBytes: number;
  readonly isolationLevel: 0 | 1;
  readonly topics: readonly FetchTopicRequest[];
}

export interface AbortedTransaction {
  readonly producerId: bigint;
  readonly firstOffset: bigint;
}

export interface FetchPartitionResponse {
  /** Topic name before v13, topic id from v13 on. */
  readonly topic: string;
  readonly partition: number;
  readonly errorCode: number;
  readonly highWatermark: bigint;
  readonly lastStableOffset: bigint;
  readonly logStartOffset: bigint;
  readonly abortedTransactions: readonly AbortedTransaction[];
  /** The raw record batches, a slice of the response frame; null or empty when none. */
  readonly records: Buffer | null;
  readonly leaderId: number;
}

export interface FetchResponse {
  readonly errorCode: number;
  readonly partitions: FetchPartitionResponse[];
}

const NONE: readonly AbortedTransaction[] = Object.freeze([]);

/**
 * Own decoder for every Fetch version in use: it keeps the records as a slice of the frame instead
 * of decoding them eagerly into objects, and returns unknown error codes instead of throwing.
 */
export function decodeFetch(c: Cursor, version: number): FetchResponse {
  const flexible = version >= 12;
  c.int32(); // throttle_time_ms
  let errorCode = 0;
  if (version >= 7) {
    errorCode = c.int16();
    c.int32(); // session_id
  }
  const partitions: FetchPartitionResponse[] = [];
  const topicCount = c.arrayLength(flexible);
  for (let t = 0; t < topicCount; t++) {
    const topic = version >= 13 ? c.uuid() : c.string(flexible);
    const partitionCount = c.arrayLength(flexible);
    for (let p = 0; p < partitionCount; p++) {
      const partition = c.int32();
      const partitionError = c.int16();
      const highWatermark = c.int64();
      const lastStableOffset = c.int64();
      const logStartOffset = version >= 5 ? c.int64() : -1n;
      let abortedTransactions = NONE;
      const abortedCount = c.arrayLength(flexible);
      if (abortedCount > 0) {
        const list: AbortedTransaction[] = [];
        for (let a = 0; a < abortedCount; a++) {
          list.push({ producerId: c.int64(), firstOffset: c.int64() });
          if (flexible) c.taggedFields();
        }
        abortedTransactions = list;
      }
      if (version >= 11) c.int32(); // preferred_read_replica
      const size = flexible ? c.uvarint() - 1 : c.int32();
      const records = size < 0 ? null : c.slice(size);
      let leaderId = -1;
      if (flexible) {
        c.taggedFields((tag, field) => {
          if (tag === 1) leaderId = field.int32();
        });
      }
      partitions.push({
        topic,
        partition,
        errorCode: partitionError,
        highWatermark,
        lastStableOffset,
        logStartOffset,
        abortedTransactions,
        records,
        leaderId,
      });
    }
    if (flexible) c.taggedFields();
  }
  if (flexible) c.taggedFields();
  return { errorCode, partitions };
}

/**
 * v4 (the oldest Kafka 4.x accepts, KIP-896) up to the newest the protocol library writes. Each is
 * a sessionless full fetch (session id 0, epoch -1), so a lost response never desynchronises a
 * session.
 */
export const Fetch = defineApi({
  key: 1,
  name: 'Fetch',
  flexibleFrom: 12,
  versions: libraryVersions(
    4,
    [
      fetchV4,
      fetchV5,
      fetchV6,
      fetchV7,
      fetchV8,
      fetchV9,
      fetchV10,
      fetchV11,
      fetchV12,
      fetchV13,
      fetchV14,
      fetchV15,
      fetchV16,
      fetchV17,
    ],
    (library, version) => ({
      encode: (request: FetchRequest): Writer =>
        library.createRequest(
          request.maxWaitMs,
          request.minBytes,
          request.maxBytes,
          request.isolationLevel,
          0,
          -1,
          request.topics.map((t) => ({
            topicId: t.topic,
            partitions: t.partitions.map((p) => ({
              partition: p.partition,
              currentLeaderEpoch: -1,
              fetchOffset: p.fetchOffset,
              lastFetchedEpoch: -1,
              partitionMaxBytes: p.maxBytes,
            })),
          })),
          [],
          '',
        ),
      decode: (body) => decodeFetch(body, version),
    }),
  ),
});
