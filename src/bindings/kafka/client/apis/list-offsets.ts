import {
  listOffsetsV1,
  listOffsetsV2,
  listOffsetsV3,
  listOffsetsV4,
  listOffsetsV5,
  listOffsetsV6,
  listOffsetsV7,
  listOffsetsV8,
  listOffsetsV9,
  type Writer,
} from '@platformatic/kafka';
import type { Cursor } from '../protocol/reader.ts';
import { defineApi, libraryVersions } from './api.ts';

export interface ListOffsetsRequest {
  readonly isolationLevel: 0 | 1;
  readonly topic: string;
  readonly partitions: readonly { readonly partition: number; readonly timestamp: bigint }[];
}

export interface ListOffsetsPartition {
  readonly topic: string;
  readonly partition: number;
  readonly errorCode: number;
  readonly timestamp: bigint;
  readonly offset: bigint;
  readonly leaderEpoch: number;
}

export function decodeListOffsets(c: Cursor, version: number): ListOffsetsPartition[] {
  const flexible = version >= 6;
  if (version >= 2) c.int32();
  const out: ListOffsetsPartition[] = [];
  const topicCount = c.arrayLength(flexible);
  for (let t = 0; t < topicCount; t++) {
    const topic = c.string(flexible);
    const partitionCount = c.arrayLength(flexible);
    for (let p = 0; p < partitionCount; p++) {
      const partition = c.int32();
      const errorCode = c.int16();
      const timestamp = c.int64();
      const offset = c.int64();
      const leaderEpoch = version >= 4 ? c.int32() : -1;
      if (flexible) c.taggedFields();
      out.push({ topic, partition, errorCode, timestamp, offset, leaderEpoch });
    }
    if (flexible) c.taggedFields();
  }
  if (flexible) c.taggedFields();
  return out;
}

/** v1 (the oldest Kafka 4.x accepts, KIP-896) up to the newest the protocol library writes. */
export const ListOffsets = defineApi({
  key: 2,
  name: 'ListOffsets',
  flexibleFrom: 6,
  versions: libraryVersions(
    1,
    [
      listOffsetsV1,
      listOffsetsV2,
      listOffsetsV3,
      listOffsetsV4,
      listOffsetsV5,
      listOffsetsV6,
      listOffsetsV7,
      listOffsetsV8,
      listOffsetsV9,
    ],
    (library, version) => ({
      encode: (request: ListOffsetsRequest): Writer =>
        library.createRequest(-1, request.isolationLevel, [
          {
            name: request.topic,
            partitions: request.partitions.map((p) => ({
              partitionIndex: p.partition,
              currentLeaderEpoch: -1,
              timestamp: p.timestamp,
            })),
          },
        ]),
      decode: (body) => decodeListOffsets(body, version),
    }),
  ),
});
