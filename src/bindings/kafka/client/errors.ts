import { protocolErrorsCodesById } from '@platformatic/kafka';
import { type ErrorCode, KgateError } from '../../../engine/errors.ts';

export interface KafkaClientErrorOptions extends ErrorOptions {
  /** Default: KGATE_KAFKA_UNAVAILABLE when retriable, else KGATE_KAFKA_FAILED. */
  readonly code?: ErrorCode;
}

/**
 * Every error the client raises. `retriable` tells the retry loops whether another attempt after a
 * metadata refresh can succeed; terminal errors surface to the caller at once so a wrong password
 * or an untrusted certificate never turns into a reconnect storm.
 */
export class KafkaClientError extends KgateError {
  readonly retriable: boolean;
  constructor(message: string, retriable: boolean, options?: KafkaClientErrorOptions) {
    super(options?.code ?? (retriable ? 'KGATE_KAFKA_UNAVAILABLE' : 'KGATE_KAFKA_FAILED'), message, options);
    this.retriable = retriable;
  }
}

/** The socket failed, closed, or timed out; the connection is gone and a new one may work. */
export class ConnectionError extends KafkaClientError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, true, options);
  }
}

/** Bytes from a broker did not decode; the connection they came from has been closed. */
export class MalformedResponseError extends KafkaClientError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, true, options);
  }
}

export class AuthenticationError extends KafkaClientError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, false, { ...options, code: 'KGATE_KAFKA_AUTHENTICATION_FAILED' });
  }
}

export class TlsError extends KafkaClientError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, false, { ...options, code: 'KGATE_KAFKA_TLS_FAILED' });
  }
}

export class UnsupportedVersionError extends KafkaClientError {
  constructor(message: string) {
    super(message, false);
  }
}

/** What a caller may wait for from Kafka before it can be served. */
export type KafkaWaitKind = 'metadata' | 'config' | 'partitions' | 'leader' | 'producer_id';

const WAITED_FOR: Record<KafkaWaitKind, string> = {
  metadata: 'metadata',
  config: 'config',
  partitions: 'partition count',
  leader: 'leader',
  producer_id: 'producer id',
};

/**
 * A caller's wait for something from Kafka (a topic's metadata or config, a partition's leader, a
 * producer id) ran out, and the caller went on without it: what it waited for stays wanted only as
 * long as someone else waits. The code says why: KGATE_KAFKA_UNAVAILABLE when no broker could be
 * reached, KGATE_KAFKA_TIMEOUT when one answers but not with that. Not retriable: the caller's
 * deadline is what ended it.
 */
export class KafkaWaitError extends KafkaClientError {
  readonly waitingFor: KafkaWaitKind;
  /** The topic, or `topic-partition`, it was waited for. */
  readonly subject: string | undefined;
  readonly waitedMs: number;

  /** `unreachable`: why no broker answers, when none does (see KafkaReachability). */
  constructor(
    waitingFor: KafkaWaitKind,
    subject: string | undefined,
    waitedMs: number,
    unreachable: string | undefined,
  ) {
    const what = subject === undefined ? WAITED_FOR[waitingFor] : `${WAITED_FOR[waitingFor]} for ${subject}`;
    const seconds = Math.round(waitedMs) / 1000;
    const why = unreachable ?? 'Kafka answers, but not with that yet';
    super(`no ${what} within ${seconds} s: ${why}`, false, {
      code: unreachable === undefined ? 'KGATE_KAFKA_TIMEOUT' : 'KGATE_KAFKA_UNAVAILABLE',
    });
    this.waitingFor = waitingFor;
    this.subject = subject;
    this.waitedMs = waitedMs;
  }
}

/** Error codes after which a fresh leader lookup and another attempt can succeed. */
const RETRIABLE_CODES = new Set<number>([
  3, // UNKNOWN_TOPIC_OR_PARTITION
  5, // LEADER_NOT_AVAILABLE
  6, // NOT_LEADER_OR_FOLLOWER
  7, // REQUEST_TIMED_OUT
  8, // BROKER_NOT_AVAILABLE
  9, // REPLICA_NOT_AVAILABLE
  13, // NETWORK_EXCEPTION
  14, // COORDINATOR_LOAD_IN_PROGRESS
  15, // COORDINATOR_NOT_AVAILABLE
  16, // NOT_COORDINATOR
  19, // NOT_ENOUGH_REPLICAS
  20, // NOT_ENOUGH_REPLICAS_AFTER_APPEND
  51, // CONCURRENT_TRANSACTIONS
  56, // KAFKA_STORAGE_ERROR
  74, // FENCED_LEADER_EPOCH
  75, // UNKNOWN_LEADER_EPOCH
  78, // OFFSET_NOT_AVAILABLE
  100, // UNKNOWN_TOPIC_ID
  103, // INCONSISTENT_TOPIC_ID: a metadata refresh picks up the new id
]);

/** Codes meaning the partition has moved or its metadata is stale. */
const STALE_METADATA_CODES = new Set<number>([3, 5, 6, 9, 56, 74, 75, 100, 103]);

/**
 * Broker error codes whose meaning a client can act on, as kgate's codes. Any other is
 * KGATE_KAFKA_UNAVAILABLE when another attempt may pass, else KGATE_KAFKA_FAILED: the gateway's
 * problem, not the client's.
 */
export const CODE_BY_BROKER_CODE: ReadonlyMap<number, ErrorCode> = new Map<number, ErrorCode>([
  [2, 'KGATE_INVALID_REQUEST'], // CORRUPT_MESSAGE
  [3, 'KGATE_TOPIC_NOT_FOUND'], // UNKNOWN_TOPIC_OR_PARTITION
  [10, 'KGATE_MESSAGE_TOO_LARGE'], // MESSAGE_TOO_LARGE
  [17, 'KGATE_INVALID_REQUEST'], // INVALID_TOPIC_EXCEPTION
  [18, 'KGATE_MESSAGE_TOO_LARGE'], // RECORD_LIST_TOO_LARGE
  [29, 'KGATE_NOT_AUTHORIZED'], // TOPIC_AUTHORIZATION_FAILED
  [30, 'KGATE_NOT_AUTHORIZED'], // GROUP_AUTHORIZATION_FAILED
  [31, 'KGATE_NOT_AUTHORIZED'], // CLUSTER_AUTHORIZATION_FAILED
  [53, 'KGATE_NOT_AUTHORIZED'], // TRANSACTIONAL_ID_AUTHORIZATION_FAILED
  [65, 'KGATE_NOT_AUTHORIZED'], // DELEGATION_TOKEN_AUTHORIZATION_FAILED
  [87, 'KGATE_INVALID_REQUEST'], // INVALID_RECORD
  [100, 'KGATE_TOPIC_NOT_FOUND'], // UNKNOWN_TOPIC_ID
]);

export function errorName(code: number): string {
  return protocolErrorsCodesById[code] ?? `UNKNOWN_ERROR_CODE_${code}`;
}

/** An error code returned by a broker for one topic or partition. */
export class KafkaProtocolError extends KafkaClientError {
  /** The broker's error code; `code` is kgate's for it. */
  readonly brokerCode: number;
  readonly errorName: string;
  readonly staleMetadata: boolean;
  constructor(brokerCode: number, context: string, serverMessage?: string | null) {
    const name = errorName(brokerCode);
    const retriable = RETRIABLE_CODES.has(brokerCode);
    const code = CODE_BY_BROKER_CODE.get(brokerCode);
    super(
      `${context}: ${name} (${brokerCode})${serverMessage ? `: ${serverMessage}` : ''}`,
      retriable,
      code === undefined ? undefined : { code },
    );
    this.brokerCode = brokerCode;
    this.errorName = name;
    this.staleMetadata = STALE_METADATA_CODES.has(brokerCode);
  }
}

/** Broker codes that say a topic, as named or by its id, is not (or no longer) where it was. */
const TOPIC_IDENTITY_CODES = new Set<number>([
  3, // UNKNOWN_TOPIC_OR_PARTITION
  100, // UNKNOWN_TOPIC_ID
  103, // INCONSISTENT_TOPIC_ID
]);

/**
 * A call pinned to one incarnation of a topic (its topic id) found it gone: the cluster names
 * another id under the topic's name, or none, or no longer has the partition. Retrying cannot
 * bring that incarnation back, so it is terminal for the call; whoever pinned it decides what
 * the topic is now.
 */
export class TopicGoneError extends KafkaClientError {
  readonly topic: string;
  readonly partition: number;
  constructor(topic: string, partition: number, detail: string, options?: ErrorOptions) {
    super(`${topic}-${partition}: ${detail}`, false, { ...options, code: 'KGATE_TOPIC_NOT_FOUND' });
    this.topic = topic;
    this.partition = partition;
  }
}

/** True for an error that may mean the topic or partition a call named is gone (see TopicGoneError). */
export function namesMissingTopic(error: unknown): error is KafkaProtocolError {
  return error instanceof KafkaProtocolError && TOPIC_IDENTITY_CODES.has(error.brokerCode);
}

/** The fetch offset lies outside the log; carries the log's current bounds so the caller can pick one. */
export class OffsetOutOfRangeError extends KafkaClientError {
  readonly topic: string;
  readonly partition: number;
  readonly requested: bigint;
  readonly earliest: bigint;
  readonly latest: bigint;
  constructor(topic: string, partition: number, requested: bigint, earliest: bigint, latest: bigint) {
    super(
      `offset ${requested} is out of range for ${topic}-${partition} (earliest ${earliest}, latest ${latest})`,
      false,
    );
    this.topic = topic;
    this.partition = partition;
    this.requested = requested;
    this.earliest = earliest;
    this.latest = latest;
  }
}

/**
 * Records kgate sent but could not learn, before their produce's deadline, whether the broker wrote
 * them: the request timed out or the connection dropped after the request was written, and no retry
 * settled it in time. They may be in the topic or not; the caller must check before writing them
 * again. Never used for records the broker certainly refused or never saw.
 */
export class ProduceOutcomeUnknownError extends KafkaClientError {
  readonly topic: string;
  readonly partition: number;
  /** If written, the records are at this offset of the partition or after it; -1 when not known. */
  readonly fromOffset: bigint;
  constructor(topic: string, partition: number, fromOffset: bigint, message: string, options?: ErrorOptions) {
    super(message, false, { ...options, code: 'KGATE_PRODUCE_OUTCOME_UNKNOWN' });
    this.topic = topic;
    this.partition = partition;
    this.fromOffset = fromOffset;
  }
}

export function isRetriable(error: unknown): boolean {
  return error instanceof KafkaClientError && error.retriable;
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
