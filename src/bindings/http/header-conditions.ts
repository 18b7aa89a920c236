import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import {
  compileGlob,
  compilePathHeader,
  NO_PARAMS,
  RouteTable,
  type BindingConfig,
  type ConditionMatcher,
  type Pattern,
} from '../../config/index.ts';

/** One `when` entry of an http server's routes. */
export interface HeaderCondition {
  readonly headers?: Readonly<Record<string, string>>;
}

/** What header conditions read of a request; an IncomingMessage is one. */
export interface RequestHead {
  readonly headers: IncomingHttpHeaders;
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  /** A TLSSocket (`encrypted`) when a tls server in front terminated TLS. */
  readonly socket: Socket;
}

type HeaderReader = (request: RequestHead) => string | undefined;

export function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

/**
 * How a condition reads one header. The pseudo-headers are what HTTP/2 would send, for HTTP/1.1
 * requests too: `:scheme` from the connection, `:authority` from Host, `:path` and `:method` from
 * the request line.
 */
function headerReader(name: string): HeaderReader {
  switch (name) {
    case ':scheme':
      return ({ socket }) => ('encrypted' in socket && socket.encrypted === true ? 'https' : 'http');
    case ':authority':
      return (request) => headerValue(request.headers[':authority']) ?? request.headers.host ?? '';
    case ':path':
      return (request) => request.url ?? '/';
    case ':method':
      return (request) => request.method ?? 'GET';
    default:
      return (request) => headerValue(request.headers[name]);
  }
}

/**
 * Matches a request whose headers (names in any case) match every pattern of the condition: a
 * glob, or for `:path` a path template that a query string may follow (compilePathHeader).
 */
export class HeaderConditionMatcher implements ConditionMatcher<RequestHead> {
  readonly #headers: readonly (readonly [HeaderReader, Pattern])[];

  constructor(condition: HeaderCondition) {
    this.#headers = Object.entries(condition.headers ?? {}).map(([name, pattern]) => {
      const lower = name.toLowerCase();
      return [headerReader(lower), lower === ':path' ? compilePathHeader(pattern) : compileGlob(pattern)];
    });
  }

  match(request: RequestHead): Readonly<Record<string, string>> | undefined {
    for (const [read, pattern] of this.#headers) {
      const value = read(request);
      if (value === undefined || !pattern.test(value)) return undefined;
    }
    return NO_PARAMS;
  }
}

/** An http server's routes, by request headers. */
export function headerRoutes(
  binding: Pick<BindingConfig, 'name' | 'routes' | 'exit'>,
): RouteTable<RequestHead, HeaderCondition> {
  return new RouteTable(binding, (condition: HeaderCondition) => new HeaderConditionMatcher(condition));
}
