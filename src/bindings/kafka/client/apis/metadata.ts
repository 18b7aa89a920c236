import {
  metadataV4,
  metadataV5,
  metadataV6,
  metadataV7,
  metadataV8,
  metadataV9,
  metadataV10,
  metadataV11,
  metadataV12,
  type Writer,
} from '@platformatic/kafka';
import { type Cursor, ZERO_UUID } from '../protocol/reader.ts';
import { defineApi, libraryVersions } from './api.ts';

/** Topics to describe; null for every topic, [] for brokers only. */
export type MetadataRequest = readonly string[] | null;

export interface MetadataBroker {
  readonly nodeId: number;
  readonly host: string;
  readonly port: number;
  readonly rack: string | null;
}

export interface MetadataPartition {
  readonly errorCode: number;
  readonly partition: number;
  readonly leader: number;
  readonly leaderEpoch: number;
  readonly replicas: readonly number[];
  readonly isr: readonly number[];
  readonly offlineReplicas: readonly number[];
}

export interface MetadataTopic {
  readonly errorCode: number;
  readonly name: string;
  /** All zeroes when the broker's Metadata version predates topic ids. */
  readonly topicId: string;
  readonly internal: boolean;
  readonly partitions: readonly MetadataPartition[];
}

export interface MetadataResponse {
  readonly clusterId: string | null;
  readonly controllerId: number;
  readonly brokers: readonly MetadataBroker[];
  readonly topics: readonly MetadataTopic[];
}

function int32Array(c: Cursor, flexible: boolean): number[] {
  const n = c.arrayLength(flexible);
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(c.int32());
  return out;
}

export function decodeMetadata(c: Cursor, version: number): MetadataResponse {
  const flexible = version >= 9;
  if (version >= 3) c.int32();
  const brokers: MetadataBroker[] = [];
  const brokerCount = c.arrayLength(flexible);
  for (let i = 0; i < brokerCount; i++) {
    brokers.push({
      nodeId: c.int32(),
      host: c.string(flexible),
      port: c.int32(),
      rack: c.nullableString(flexible),
    });
    if (flexible) c.taggedFields();
  }
  const clusterId = version >= 2 ? c.nullableString(flexible) : null;
  const controllerId = c.int32();
  const topics: MetadataTopic[] = [];
  const topicCount = c.arrayLength(flexible);
  for (let t = 0; t < topicCount; t++) {
    const errorCode = c.int16();
    const name = c.nullableString(flexible) ?? '';
    const topicId = version >= 10 ? c.uuid() : ZERO_UUID;
    const internal = c.int8() !== 0;
    const partitions: MetadataPartition[] = [];
    const partitionCount = c.arrayLength(flexible);
    for (let p = 0; p < partitionCount; p++) {
      const partitionError = c.int16();
      const partition = c.int32();
      const leader = c.int32();
      const leaderEpoch = version >= 7 ? c.int32() : -1;
      const replicas = int32Array(c, flexible);
      const isr = int32Array(c, flexible);
      const offlineReplicas = version >= 5 ? int32Array(c, flexible) : [];
      if (flexible) c.taggedFields();
      partitions.push({
        errorCode: partitionError,
        partition,
        leader,
        leaderEpoch,
        replicas,
        isr,
        offlineReplicas,
      });
    }
    if (version >= 8) c.int32(); // topic_authorized_operations
    if (flexible) c.taggedFields();
    topics.push({ errorCode, name, topicId, internal, partitions });
  }
  if (version >= 8 && version <= 10) c.int32(); // cluster_authorized_operations
  if (flexible) c.taggedFields();
  return { clusterId, controllerId, brokers, topics };
}

/**
 * v4 up to the newest the protocol library writes. Kafka 4.x accepts v1 and up (KIP-896), but
 * before v4 a request cannot say allow_auto_topic_creation=false, and a broker with
 * auto.create.topics.enable would create any topic a request names: kgate never creates topics.
 */
export const Metadata = defineApi({
  key: 3,
  name: 'Metadata',
  flexibleFrom: 9,
  versions: libraryVersions(
    4,
    [
      metadataV4,
      metadataV5,
      metadataV6,
      metadataV7,
      metadataV8,
      metadataV9,
      metadataV10,
      metadataV11,
      metadataV12,
    ],
    (library, version) => ({
      encode: (topics: MetadataRequest): Writer =>
        // allow_auto_topic_creation false: a topic a request names is never created by asking.
        library.createRequest(topics === null ? null : [...topics], false, false),
      decode: (body) => decodeMetadata(body, version),
    }),
  ),
});
