// Errors as they cross a MessagePort. Structured cloning keeps an Error's message and stack but
// drops its class and every field of its own, the code included, so an error is sent as plain
// data and rebuilt on the other side: the same status is then chosen from it on either thread.
import { causesOf, KgateError, isErrorCode } from './errors.ts';

/** Field values that structured cloning copies as they are. */
export type WireField = string | number | boolean | bigint | null | undefined;

/** An error as plain, structured-cloneable data. */
export interface WireError {
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
  /** Its own enumerable fields with plain values: `code`, `retriable`, a broker code, a topic, ... */
  readonly fields: Readonly<Record<string, WireField>>;
  readonly cause?: WireError;
}

/** A class an error may be rebuilt as: matched by its name, which must equal the error's `name`. */
export type ErrorClass = abstract new (...args: never[]) => Error;

function isWireField(value: unknown): value is WireField {
  return value === null || ['string', 'number', 'boolean', 'bigint', 'undefined'].includes(typeof value);
}

function encodeOne(error: unknown): Omit<WireError, 'cause'> {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error), fields: {} };
  const fields: Record<string, WireField> = {};
  // Fields holding objects (a ConfigError's diagnostics, say) stay behind: they may not clone.
  for (const [key, value] of Object.entries(error)) if (isWireField(value)) fields[key] = value;
  return {
    name: error.name,
    message: error.message,
    ...(error.stack === undefined ? {} : { stack: error.stack }),
    fields,
  };
}

/** `error` and its cause chain (as far as MAX_CAUSES) as plain data; a value that is no Error becomes one. */
export function encodeError(error: unknown): WireError {
  const chain = causesOf(error).map(encodeOne);
  let wire: WireError | undefined;
  for (let i = chain.length - 1; i >= 0; i--) {
    const one = chain[i];
    if (one !== undefined) wire = wire === undefined ? one : { ...one, cause: wire };
  }
  return wire ?? encodeOne(error);
}

/** JavaScript's own error classes, rebuilt as themselves whatever the caller names. */
const BUILT_IN: readonly ErrorClass[] = [
  TypeError,
  RangeError,
  ReferenceError,
  SyntaxError,
  EvalError,
  URIError,
];

/**
 * Rebuilds an error sent by encodeError: as the class in `classes` (or the built-in one) whose name
 * it bears, no constructor run and its fields given back as they were; else as a KgateError when
 * it has a code from the table; else as an Error. Name, message, stack, fields and causes are all
 * restored, so `instanceof`, the code and the status are what they were on the sending side. It
 * is a native Error underneath, so it can itself be logged, inspected and structured-cloned.
 */
export function decodeError(wire: WireError, classes: readonly ErrorClass[] = []): Error {
  const known = [...classes, ...BUILT_IN].find((c) => c.name === wire.name);
  const prototype: object =
    known?.prototype ?? (isErrorCode(wire.fields['code']) ? KgateError.prototype : Error.prototype);
  const cause = wire.cause === undefined ? undefined : decodeError(wire.cause, classes);
  const error = new Error(wire.message, cause === undefined ? undefined : { cause });
  Object.setPrototypeOf(error, prototype);
  if (wire.stack !== undefined) error.stack = wire.stack;
  Object.assign(error, wire.fields);
  if (error.name !== wire.name) error.name = wire.name;
  return error;
}
