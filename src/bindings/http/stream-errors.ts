import type { ServerHttp2Session } from 'node:http2';

/** nghttp2's NGHTTP2_ERR_PROTO, the errno of the error node destroys a session with on its report. */
const NGHTTP2_ERR_PROTO = -505;

function isProtocolReport(error: Error | null | undefined): boolean {
  return error instanceof Error && 'errno' in error && error.errno === NGHTTP2_ERR_PROTO;
}

/**
 * Keeps an HTTP/2 session going through a protocol error of one of its streams. RFC 9113 8.1.1
 * makes a request whose DATA exceed its content-length a stream error; nghttp2 answers it so, with
 * RST_STREAM (PROTOCOL_ERROR) on that stream, but then reports the frame as invalid with
 * NGHTTP2_ERR_PROTO, and node destroys the whole session on that report: one client's malformed
 * upload would end every other stream of the connection. The report does not tell a stream's error
 * from the connection's (a SETTINGS acknowledgement nobody asked for arrives the same way, after
 * which nghttp2 sends GOAWAY itself), so the destroy is held back one turn of the event loop. A
 * stream the error was about closes in that turn, when its reset goes out (with PROTOCOL_ERROR,
 * or with the code the server closed it with already, if it had answered before reading the
 * body): then the error was that stream's and the session goes on (`onStreamError` is called).
 * Otherwise the session is destroyed as node meant. Should a connection error coincide with an
 * unrelated stream closing, the session nghttp2 has already sent GOAWAY on only lives until its
 * open streams end. Repeated errors stay bounded: nghttp2's glitch limit and node's
 * `maxSessionInvalidFrames` end the session with errors of their own, which pass through.
 */
export function keepSessionOnStreamErrors(session: ServerHttp2Session, onStreamError: () => void): void {
  let pending = 0;
  let excused = 0;
  session.on('stream', (stream) => {
    stream.once('close', () => {
      if (pending > excused) excused++;
    });
  });
  const destroy = session.destroy.bind(session);
  session.destroy = (error?: Error, code?: number): void => {
    if (!isProtocolReport(error) || session.destroyed) {
      destroy(error, code);
      return;
    }
    pending++;
    setImmediate(() => {
      pending--;
      if (excused > 0) {
        excused--;
        onStreamError();
      } else if (!session.destroyed) destroy(error, code);
    });
  };
}
