import { Reader, ResponseError } from '@platformatic/kafka';
import type { Cursor } from '../protocol/reader.ts';

type LibraryParser<T> = (
  correlationId: number,
  apiKey: number,
  apiVersion: number,
  reader: Reader,
) => T | Promise<T>;

/**
 * Runs one of the protocol library's response parsers over the rest of a frame. Those parsers
 * throw when any topic or partition carries an error code, with the decoded response attached;
 * the client wants the response and judges each code itself.
 */
export function lenient<T>(
  parse: LibraryParser<T>,
  cursor: Cursor,
  api: { readonly key: number; readonly name: string },
  version: number,
): T {
  let result: T | Promise<T>;
  try {
    result = parse(0, api.key, version, Reader.from(cursor.buf.subarray(cursor.pos, cursor.end)));
  } catch (error) {
    if (error instanceof ResponseError && error['response'] !== undefined) return error['response'] as T;
    throw error;
  }
  if (result instanceof Promise) throw new Error(`${api.name} parser is asynchronous`);
  cursor.pos = cursor.end;
  return result;
}
