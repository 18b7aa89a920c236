// Errors as they cross from the main thread to a worker. Structured cloning keeps only an Error's
// message and name, so the kinds north-side bindings map to statuses are carried explicitly and
// rebuilt on the other side.
import { KafkaClientError, KafkaProtocolError } from '../client/index.ts';

/** An error as it crosses threads; the kinds north-side bindings map to statuses are kept. */
export interface WireError {
  readonly message: string;
  readonly name: string;
  /** Set for a KafkaClientError. */
  readonly retriable?: boolean;
  /** Set for a KafkaProtocolError: the broker's error code. */
  readonly code?: number;
  readonly cause?: WireError;
}

export function encodeError(error: unknown, depth = 0): WireError {
  if (!(error instanceof Error)) return { message: String(error), name: 'Error' };
  const cause = depth < 4 && error.cause !== undefined ? encodeError(error.cause, depth + 1) : undefined;
  return {
    message: error.message,
    name: error.name,
    ...(error instanceof KafkaClientError ? { retriable: error.retriable } : {}),
    ...(error instanceof KafkaProtocolError ? { code: error.code } : {}),
    ...(cause === undefined ? {} : { cause }),
  };
}

/** Rebuilds the error classes whose kind decides an HTTP status (see proxies/cache-clients.ts). */
export function decodeError(wire: WireError): Error {
  const cause = wire.cause === undefined ? undefined : decodeError(wire.cause);
  let error: Error;
  if (wire.code !== undefined) {
    error = new KafkaProtocolError(wire.code, '');
    error.message = wire.message;
    if (cause !== undefined) error.cause = cause;
  } else if (wire.retriable !== undefined) {
    error = new KafkaClientError(wire.message, wire.retriable, cause === undefined ? undefined : { cause });
  } else {
    error = new Error(wire.message, cause === undefined ? undefined : { cause });
  }
  error.name = wire.name;
  return error;
}
