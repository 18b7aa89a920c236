import type { ServerResponse } from 'node:http';

// Response bodies written as the connection takes them. A body handed to the response whole is
// queued whole: a client that reads nothing would hold all of it, and a document shared by many
// responses would be held once per response still writing it. Written a slice at a time, waiting
// for 'drain' in between, a response queues at most the socket's buffer plus one slice beyond what
// the client has read, and the slices are views, so a shared body is never copied.

/** Bytes handed to the response at a time: the socket buffer's order of magnitude. */
export const BODY_SLICE_BYTES = 64 * 1024;

/**
 * Writes `body` and ends the response, a slice at a time as the connection drains (HTTP/1.1: the
 * socket; HTTP/2: the stream's flow control). `gone` aborts when the response closes (the client
 * went away). Resolves once the body is handed over whole, or once `gone` aborted: either way the
 * caller may let go of `body`.
 */
export async function writeBody(res: ServerResponse, body: Buffer, gone: AbortSignal): Promise<void> {
  if (gone.aborted) return;
  if (body.length <= BODY_SLICE_BYTES) {
    res.end(body);
    return;
  }
  let at = 0;
  while (at < body.length && !gone.aborted) {
    const end = Math.min(at + BODY_SLICE_BYTES, body.length);
    const slice = body.subarray(at, end);
    at = end;
    if (at === body.length) res.end(slice);
    else if (!res.write(slice)) await drained(res, gone);
  }
}

/** Resolves at the response's next 'drain', or when `gone` aborts. */
function drained(res: ServerResponse, gone: AbortSignal): Promise<void> {
  if (gone.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      gone.removeEventListener('abort', done);
      resolve();
    };
    res.on('drain', done);
    gone.addEventListener('abort', done, { once: true });
  });
}
