// Errors as they cross between the main thread's cache_servers and a worker: encoded and rebuilt
// by the engine's generic wire format, as the classes below when they bear one of their names, so
// that `instanceof` holds on the worker and the same code (hence the same status) comes out.
import { decodeError as decodeAs, type WireError } from '../../../engine/wire-error.ts';
import { IngestPausedError, TopicDeletedError, TopicNotFoundError } from '../cache_server/errors.ts';
import {
  AuthenticationError,
  ConnectionError,
  KafkaClientError,
  KafkaProtocolError,
  KafkaWaitError,
  MalformedResponseError,
  OffsetOutOfRangeError,
  ProduceOutcomeUnknownError,
  TlsError,
  TopicGoneError,
  UnsupportedVersionError,
} from '../client/index.ts';

export { encodeError, type WireError } from '../../../engine/wire-error.ts';

/** What a cache_server may reject with or end an attachment with, rebuilt as itself. */
const CACHE_SERVER_ERRORS = [
  KafkaClientError,
  ConnectionError,
  MalformedResponseError,
  AuthenticationError,
  TlsError,
  UnsupportedVersionError,
  KafkaProtocolError,
  OffsetOutOfRangeError,
  ProduceOutcomeUnknownError,
  TopicGoneError,
  KafkaWaitError,
  TopicNotFoundError,
  TopicDeletedError,
  IngestPausedError,
];

export function decodeError(wire: WireError): Error {
  return decodeAs(wire, CACHE_SERVER_ERRORS);
}
