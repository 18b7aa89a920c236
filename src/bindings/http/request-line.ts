import type { IncomingMessage } from 'node:http';

/** Why a request is refused before routing: the status and the message the client gets. */
export interface Refusal {
  readonly status: number;
  readonly message: string;
}

/**
 * The version in the request line of a request that came over an HTTP/1 connection. node's parser
 * passes on `GET /` without a version (as HTTP/0.9) and `GET / HTTP/2.0` (as 2.0) like any other
 * request; kgate speaks HTTP/1.0 and 1.1 there, HTTP/2 only after its preface or ALPN.
 */
export function refuseVersion(req: IncomingMessage): Refusal | undefined {
  if (req.httpVersionMajor === 1) return undefined;
  if (req.httpVersionMajor === 0)
    return { status: 400, message: 'the request line names no HTTP version (HTTP/0.9 is not served)' };
  return {
    status: 505,
    message: `HTTP/${req.httpVersion} in a request line is not served; HTTP/2 starts with its connection preface`,
  };
}

/**
 * The path of a request target (before any query), which must be well-formed percent-encoding of
 * UTF-8: `%` followed by anything but two hex digits, or escapes that decode to no UTF-8 (overlong
 * forms, surrogates, stray continuation bytes), name nothing. Passed on undecoded they would give
 * two spellings one key (`%zz` and `%25zz`); refusing them here refuses them for every route.
 */
export function refuseTarget(target: string): Refusal | undefined {
  const query = target.indexOf('?');
  const path = query < 0 ? target : target.slice(0, query);
  if (!path.includes('%')) return undefined;
  try {
    decodeURIComponent(path);
    return undefined;
  } catch {
    return { status: 400, message: 'the request path has an invalid percent-escape' };
  }
}
