import { decodeProgress, encodeProgress } from '../proxies/progress-token.ts';

/** The ETag header value for a progress: a strong validator, quoted. */
export function etagOf(progress: ReadonlyMap<number, bigint>): string {
  return `"${encodeProgress(progress)}"`;
}

const COMMA = 0x2c;
const QUOTE = 0x22;

/** Space, tab and the other ASCII white space a lenient reader skips between list elements. */
function isSpace(code: number): boolean {
  return code === 0x20 || (code >= 0x09 && code <= 0x0d);
}

/**
 * The entity tags of an If-None-Match header without quotes or weak prefixes (a GET compares
 * weakly), `*` as itself and an unquoted tag as it stands; empty when the header is absent. One
 * pass over the header, never looking back: the header is the client's, and the regular
 * expression this replaces took 0.5 s of event loop on 16 KB crafted to make it backtrack.
 */
export function parseIfNoneMatch(header: string | undefined): string[] {
  if (header === undefined) return [];
  const tags: string[] = [];
  let at = 0;
  while (at < header.length) {
    const code = header.charCodeAt(at);
    if (code === COMMA || isSpace(code)) {
      at++;
      continue;
    }
    const quote = code === QUOTE ? at : header.startsWith('W/"', at) ? at + 2 : -1;
    if (quote >= 0) {
      const close = header.indexOf('"', quote + 1);
      // An unterminated tag ends the list: what follows its quote is inside it.
      if (close < 0) break;
      tags.push(header.slice(quote + 1, close));
      at = close + 1;
    } else {
      let end = at + 1;
      while (end < header.length) {
        const next = header.charCodeAt(end);
        if (next === COMMA || isSpace(next)) break;
        end++;
      }
      tags.push(header.slice(at, end));
      at = end;
    }
  }
  return tags;
}

/** The progress named by the first If-None-Match tag that is one of our tokens. */
export function progressFromIfNoneMatch(header: string | undefined): Map<number, bigint> | undefined {
  for (const tag of parseIfNoneMatch(header)) {
    const progress = decodeProgress(tag);
    if (progress !== undefined) return progress;
  }
  return undefined;
}
