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
