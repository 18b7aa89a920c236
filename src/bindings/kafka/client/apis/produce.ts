import type { Cursor } from '../protocol/reader.ts';
import { sizeOfUvarint, writeUvarint } from '../protocol/writer.ts';
import { defineApi, versionRange } from './api.ts';

export interface ProducePartitionData {
  readonly partition: number;
  readonly batch: Buffer;
}

export interface ProduceTopicData {
  readonly topic: string;
  readonly partitions: readonly ProducePartitionData[];
}

export interface ProduceRequest {
  readonly acks: number;
  readonly timeoutMs: number;
  readonly topics: readonly ProduceTopicData[];
}

/**
 * Produce request for v3..v11, written by hand so record batches (already encoded, one per
 * partition) are passed to the socket as they are rather than copied into one request buffer.
 */
export function encodeProduce(
  version: number,
  acks: number,
  timeoutMs: number,
  topics: readonly ProduceTopicData[],
): Buffer[] {
  const flexible = version >= 9;
  const out: Buffer[] = [];
  const head: number[] = [];
  const flushHead = (): void => {
    if (head.length > 0) out.push(Buffer.from(head.splice(0)));
  };
  const pushInt16 = (v: number): void => {
    head.push((v >> 8) & 0xff, v & 0xff);
  };
  const pushInt32 = (v: number): void => {
    head.push((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
  };
  const pushUvarint = (v: number): void => {
    const b = Buffer.allocUnsafe(sizeOfUvarint(v));
    writeUvarint(b, 0, v);
    head.push(...b);
  };
  const pushArrayLength = (n: number): void => {
    if (flexible) pushUvarint(n + 1);
    else pushInt32(n);
  };
  const pushString = (s: string): void => {
    const bytes = Buffer.from(s, 'utf8');
    if (flexible) pushUvarint(bytes.length + 1);
    else pushInt16(bytes.length);
    head.push(...bytes);
  };
  // transactional_id: null
  if (flexible) pushUvarint(0);
  else pushInt16(-1);
  pushInt16(acks);
  pushInt32(timeoutMs);
  pushArrayLength(topics.length);
  for (const topic of topics) {
    pushString(topic.topic);
    pushArrayLength(topic.partitions.length);
    for (const partition of topic.partitions) {
      pushInt32(partition.partition);
      if (flexible) pushUvarint(partition.batch.length + 1);
      else pushInt32(partition.batch.length);
      flushHead();
      out.push(partition.batch);
      if (flexible) head.push(0);
    }
    if (flexible) head.push(0);
  }
  if (flexible) head.push(0);
  flushHead();
  return out;
}

export interface ProducePartitionResponse {
  readonly topic: string;
  readonly partition: number;
  readonly errorCode: number;
  readonly baseOffset: bigint;
  readonly logAppendTimeMs: bigint;
  readonly logStartOffset: bigint;
  readonly errorMessage: string | null;
  readonly recordErrors: readonly { readonly batchIndex: number; readonly message: string | null }[];
}

export function decodeProduce(c: Cursor, version: number): ProducePartitionResponse[] {
  const flexible = version >= 9;
  const out: ProducePartitionResponse[] = [];
  const topicCount = c.arrayLength(flexible);
  for (let t = 0; t < topicCount; t++) {
    const topic = c.string(flexible);
    const partitionCount = c.arrayLength(flexible);
    for (let p = 0; p < partitionCount; p++) {
      const partition = c.int32();
      const errorCode = c.int16();
      const baseOffset = c.int64();
      const logAppendTimeMs = c.int64();
      const logStartOffset = version >= 5 ? c.int64() : -1n;
      const recordErrors: { batchIndex: number; message: string | null }[] = [];
      let errorMessage: string | null = null;
      if (version >= 8) {
        const errorCount = c.arrayLength(flexible);
        for (let e = 0; e < errorCount; e++) {
          recordErrors.push({ batchIndex: c.int32(), message: c.nullableString(flexible) });
          if (flexible) c.taggedFields();
        }
        errorMessage = c.nullableString(flexible);
      }
      if (flexible) c.taggedFields();
      out.push({
        topic,
        partition,
        errorCode,
        baseOffset,
        logAppendTimeMs,
        logStartOffset,
        errorMessage,
        recordErrors,
      });
    }
    if (flexible) c.taggedFields();
  }
  c.int32(); // throttle_time_ms
  if (flexible) c.taggedFields();
  return out;
}

/** v3 (the oldest Kafka 4.x accepts, KIP-896) up to v11, the newest the protocol library knows. */
export const Produce = defineApi({
  key: 0,
  name: 'Produce',
  flexibleFrom: 9,
  versions: versionRange(3, 11, (version) => ({
    encode: (request: ProduceRequest): Buffer[] =>
      encodeProduce(version, request.acks, request.timeoutMs, request.topics),
    decode: (body) => decodeProduce(body, version),
  })),
});
