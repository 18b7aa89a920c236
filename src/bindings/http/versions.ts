import type { Socket } from 'node:net';

export type HttpVersion = 'http/1.1' | 'h2';

/** Zilla's http server speaks both unless `options.versions` narrows it down. */
export function parseVersions(value: readonly HttpVersion[] | undefined): ReadonlySet<HttpVersion> {
  if (value === undefined) return new Set<HttpVersion>(['http/1.1', 'h2']);
  // The schema lets an empty list through.
  if (value.length === 0) throw new Error('options.versions names no HTTP version');
  return new Set(value);
}

/** What a client speaking HTTP/2 without TLS ("prior knowledge", RFC 9113 3.3) sends first. */
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/**
 * Reads a plain connection's first bytes until they tell the HTTP/2 connection preface from an
 * HTTP/1.x request line, puts them back, and calls `done` with the version, or with undefined when
 * the connection closed or stayed silent for `timeoutMs` (then it is destroyed). Nothing is copied
 * unless the first bytes arrive in more than one chunk.
 */
export function sniffVersion(
  socket: Socket,
  timeoutMs: number,
  done: (version: HttpVersion | undefined) => void,
): void {
  let head: Buffer | undefined;
  const finish = (version: HttpVersion | undefined): void => {
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('close', onClose);
    if (version !== undefined && head !== undefined) {
      socket.pause();
      socket.unshift(head);
    }
    done(version);
  };
  const onData = (chunk: Buffer): void => {
    head = head === undefined ? chunk : Buffer.concat([head, chunk]);
    const compared = Math.min(head.length, PREFACE.length);
    if (head.compare(PREFACE, 0, compared, 0, compared) !== 0) finish('http/1.1');
    else if (head.length >= PREFACE.length) finish('h2');
  };
  const onClose = (): void => finish(undefined);
  const timer = setTimeout(() => {
    finish(undefined);
    socket.destroy();
  }, timeoutMs);
  timer.unref();
  socket.on('data', onData);
  socket.once('close', onClose);
}
