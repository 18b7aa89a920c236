import { decodeProgress, encodeProgress } from '../proxies/progress-token.ts';

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
