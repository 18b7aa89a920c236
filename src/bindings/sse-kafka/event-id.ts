import { charClass, compilePattern } from '../../config/index.ts';
import { decodeProgress, encodeProgress } from '../proxies/progress-token.ts';
import { expressionsOf } from '../proxies/templates.ts';

/** Zilla's default: the id is the stream progress alone. */
export const DEFAULT_EVENT_ID = '${etag}';

/**
 * An `event.id` template compiled both ways: format() writes a message's id, and progressOf()
 * finds the progress again in the Last-Event-ID a reconnecting browser sends, whatever literal
 * text and keys surround it (Zilla's other form is `["${base64(key)}","${etag}"]`).
 */
export interface EventIdFormat {
  format(progress: ReadonlyMap<number, bigint>, key: Buffer | null): string;
  progressOf(lastEventId: string): Map<number, bigint> | undefined;
}

const EXPRESSION = /(\$\{[^}]*\})/;
const BASE64URL = charClass((code) => /[A-Za-z0-9_-]/.test(String.fromCharCode(code)), false);
const BASE64 = charClass((code) => /[A-Za-z0-9+/=]/.test(String.fromCharCode(code)), false);
const KNOWN = new Set(['etag', 'base64(key)']);

const ETAG = Symbol('etag');
const KEY = Symbol('base64(key)');
type Piece = typeof ETAG | typeof KEY | string;

export function compileEventId(template: string = DEFAULT_EVENT_ID): EventIdFormat {
  const names = expressionsOf(template);
  for (const name of names)
    if (!KNOWN.has(name))
      throw new Error(`event.id: unknown expression \${${name}}; known: \${etag}, \${base64(key)}`);
  if (names.filter((n) => n === 'etag').length !== 1)
    throw new Error('event.id must contain ${etag} exactly once, or reconnecting clients cannot resume');
  if (/[\r\n\0]/.test(template)) throw new Error('event.id must not contain a line break or NUL');
  // Formatting runs per event per connection: the template is taken apart once, here.
  const pieces = template
    .split(EXPRESSION)
    .filter((p) => p !== '')
    .map((part): Piece => {
      const name = EXPRESSION.test(part) ? part.slice(2, -1).trim() : undefined;
      return name === 'etag' ? ETAG : name === 'base64(key)' ? KEY : part;
    });
  // A Last-Event-ID is the client's: it is matched without backtracking, since a template such as
  // `${base64(key)}${etag}` would make a RegExp quadratic in the id's length.
  const pattern = compilePattern(
    pieces.map((piece) =>
      piece === ETAG
        ? { many: BASE64URL, min: 0, capture: true }
        : piece === KEY
          ? { many: BASE64, min: 0 }
          : { literal: piece },
    ),
  );
  const format =
    pieces.length === 1 && pieces[0] === ETAG
      ? (progress: ReadonlyMap<number, bigint>): string => encodeProgress(progress)
      : (progress: ReadonlyMap<number, bigint>, key: Buffer | null): string => {
          let id = '';
          for (const piece of pieces) {
            if (piece === ETAG) id += encodeProgress(progress);
            else if (piece === KEY) id += key === null ? '' : key.toString('base64');
            else id += piece;
          }
          return id;
        };
  return {
    format,
    progressOf(lastEventId) {
      const token = pattern.exec(lastEventId)?.[0];
      return token === undefined ? undefined : decodeProgress(token);
    },
  };
}
