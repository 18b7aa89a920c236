import {
  describeConfigsV1,
  describeConfigsV2,
  describeConfigsV3,
  describeConfigsV4,
  initProducerIdV0,
  initProducerIdV1,
  initProducerIdV2,
  initProducerIdV3,
  initProducerIdV4,
  initProducerIdV5,
  listOffsetsV1,
  listOffsetsV2,
  listOffsetsV3,
  listOffsetsV4,
  listOffsetsV5,
  listOffsetsV6,
  listOffsetsV7,
  listOffsetsV8,
  listOffsetsV9,
  metadataV1,
  metadataV2,
  metadataV3,
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
import { Cursor, ZERO_UUID } from './wire.ts';

// Requests are encoded by the protocol library; responses are decoded here so that an error code
// the library does not know is reported as that code instead of failing the decode.

function codec<T>(codecs: readonly T[], first: number, version: number, api: string): T {
  const found = codecs[version - first];
  if (found === undefined) throw new Error(`${api} v${version} is not implemented`);
  return found;
}

const METADATA = [
  metadataV1,
  metadataV2,
  metadataV3,
  metadataV4,
  metadataV5,
  metadataV6,
  metadataV7,
  metadataV8,
  metadataV9,
  metadataV10,
  metadataV11,
  metadataV12,
];

export function encodeMetadata(version: number, topics: readonly string[] | null): Writer {
  return codec(METADATA, 1, version, 'Metadata').createRequest(
    topics === null ? null : [...topics],
    false,
    false,
  );
}

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

const LIST_OFFSETS = [
  listOffsetsV1,
  listOffsetsV2,
  listOffsetsV3,
  listOffsetsV4,
  listOffsetsV5,
  listOffsetsV6,
  listOffsetsV7,
  listOffsetsV8,
  listOffsetsV9,
];

export function encodeListOffsets(
  version: number,
  isolationLevel: 0 | 1,
  topic: string,
  partitions: readonly { readonly partition: number; readonly timestamp: bigint }[],
): Writer {
  return codec(LIST_OFFSETS, 1, version, 'ListOffsets').createRequest(-1, isolationLevel, [
    {
      name: topic,
      partitions: partitions.map((p) => ({
        partitionIndex: p.partition,
        currentLeaderEpoch: -1,
        timestamp: p.timestamp,
      })),
    },
  ]);
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

const DESCRIBE_CONFIGS = [describeConfigsV1, describeConfigsV2, describeConfigsV3, describeConfigsV4];
const RESOURCE_TOPIC = 2;

export function encodeDescribeTopicConfigs(version: number, topic: string): Writer {
  return codec(DESCRIBE_CONFIGS, 1, version, 'DescribeConfigs').createRequest(
    [{ resourceType: RESOURCE_TOPIC, resourceName: topic, configurationKeys: null }],
    false,
    false,
  );
}

export interface DescribeConfigsResult {
  readonly errorCode: number;
  readonly errorMessage: string | null;
  readonly name: string;
  readonly configs: Record<string, string | null>;
}

export function decodeDescribeConfigs(c: Cursor, version: number): DescribeConfigsResult[] {
  const flexible = version >= 4;
  c.int32();
  const out: DescribeConfigsResult[] = [];
  const count = c.arrayLength(flexible);
  for (let r = 0; r < count; r++) {
    const errorCode = c.int16();
    const errorMessage = c.nullableString(flexible);
    c.int8(); // resource_type
    const name = c.string(flexible);
    const configs: Record<string, string | null> = {};
    const configCount = c.arrayLength(flexible);
    for (let i = 0; i < configCount; i++) {
      const key = c.string(flexible);
      configs[key] = c.nullableString(flexible);
      c.int8(); // read_only
      c.int8(); // config_source
      c.int8(); // is_sensitive
      const synonyms = c.arrayLength(flexible);
      for (let s = 0; s < synonyms; s++) {
        c.string(flexible);
        c.nullableString(flexible);
        c.int8();
        if (flexible) c.taggedFields();
      }
      if (version >= 3) {
        c.int8(); // config_type
        c.nullableString(flexible); // documentation
      }
      if (flexible) c.taggedFields();
    }
    if (flexible) c.taggedFields();
    out.push({ errorCode, errorMessage, name, configs });
  }
  if (flexible) c.taggedFields();
  return out;
}

const INIT_PRODUCER_ID = [
  initProducerIdV0,
  initProducerIdV1,
  initProducerIdV2,
  initProducerIdV3,
  initProducerIdV4,
  initProducerIdV5,
];

export function encodeInitProducerId(version: number): Writer {
  return codec(INIT_PRODUCER_ID, 0, version, 'InitProducerId').createRequest(null, 60_000);
}

export interface InitProducerIdResult {
  readonly errorCode: number;
  readonly producerId: bigint;
  readonly producerEpoch: number;
}

export function decodeInitProducerId(c: Cursor, version: number): InitProducerIdResult {
  c.int32();
  const result = { errorCode: c.int16(), producerId: c.int64(), producerEpoch: c.int16() };
  if (version >= 2) c.taggedFields();
  return result;
}
