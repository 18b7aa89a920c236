import { formatProgress, parseProgress } from '../kafka/cache_client/index.ts';

/**
 * A stream position as an opaque token: base64url of `partition:offset,...`. The token is both the
 * HTTP ETag of a fetch and the `${etag}` of an SSE event id, so a client can hand it back to any
 * instance (the position lives with the client) and it survives headers and event ids unescaped.
 */
export function encodeProgress(progress: ReadonlyMap<number, bigint>): string {
  // Every SSE event carries one, so the usual case (partitions already in order) is built in one
  // pass; formatProgress sorts.
  let text = '';
  let last = -1;
  for (const [partition, offset] of progress) {
    if (partition <= last) return Buffer.from(formatProgress(progress), 'latin1').toString('base64url');
    text += last < 0 ? `${partition}:${offset}` : `,${partition}:${offset}`;
    last = partition;
  }
  return Buffer.from(text, 'latin1').toString('base64url');
}

/** The progress a token stands for, or undefined when it is not one this gateway made. */
export function decodeProgress(token: string): Map<number, bigint> | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(token)) return undefined;
  try {
    const progress = parseProgress(Buffer.from(token, 'base64url').toString('utf8'));
    // base64url decoding ignores stray bits; only a token that round-trips is ours.
    return encodeProgress(progress) === token ? progress : undefined;
  } catch {
    return undefined;
  }
}

/** The ETag header value for a progress: a strong validator, quoted. */
export function etagOf(progress: ReadonlyMap<number, bigint>): string {
  return `"${encodeProgress(progress)}"`;
}

/**
 * The entity tags of an If-None-Match header without quotes or weak prefixes (a GET compares
 * weakly), `*` as itself; empty when the header is absent.
 */
export function parseIfNoneMatch(header: string | undefined): string[] {
  if (header === undefined) return [];
  const tags: string[] = [];
  for (const match of header.matchAll(/\s*(?:(\*)|(?:W\/)?"([^"]*)"|([^\s,]+))\s*(?:,|$)/g)) {
    const tag = match[1] ?? match[2] ?? match[3];
    if (tag !== undefined) tags.push(tag);
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

/** Longest `Prefer: wait` honoured, so a client cannot hold a request (and its stream) open for hours. */
export const MAX_WAIT_SECONDS = 600;

export interface Preferences {
  /** Seconds, capped at MAX_WAIT_SECONDS; absent when not asked for. */
  readonly wait?: number;
  readonly respondAsync: boolean;
}

/** RFC 7240 Prefer headers (several may be sent, each a comma list of `token[=value][;params]`). */
export function parsePrefer(header: string | readonly string[] | undefined): Preferences {
  const values = header === undefined ? [] : typeof header === 'string' ? [header] : header;
  let wait: number | undefined;
  let respondAsync = false;
  for (const value of values) {
    for (const item of value.split(',')) {
      const [preference = ''] = item.split(';');
      const eq = preference.indexOf('=');
      const name = (eq < 0 ? preference : preference.slice(0, eq)).trim().toLowerCase();
      const raw =
        eq < 0
          ? ''
          : preference
              .slice(eq + 1)
              .trim()
              .replace(/^"(.*)"$/, '$1');
      if (name === 'respond-async') respondAsync = true;
      else if (name === 'wait' && wait === undefined && /^\d+$/.test(raw))
        wait = Math.min(Number(raw), MAX_WAIT_SECONDS);
    }
  }
  return wait === undefined ? { respondAsync } : { wait, respondAsync };
}
