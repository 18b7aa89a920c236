import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { RouteConfig } from '../config/index.ts';
import type { Binding, BindingContext } from '../engine/binding.ts';
import { refusalOf, type Authorization, type GuardedRefusal } from '../guards/index.ts';
import { KgateError } from '../engine/errors.ts';

/**
 * The contracts between the bindings that face clients: a `tcp server` hands connections to a
 * ConnectionHandler (`tls server`, `http server`, `echo server`, `fan server`), the `http server`
 * hands requests to an HttpHandler (`sse server`, `http-kafka proxy`, `echo server`), the `sse
 * server` hands event streams to an SseHandler (`sse-kafka proxy`), a `fan server` hands the stream
 * of all its clients to a StreamHandler (`echo server`). Each binding finds its exits with `ctx.lookup` and checks them with the guards
 * below at start, so a miswired config fails then rather than on the first client.
 */

export interface ConnectionInfo {
  /** The port the connection arrived on; one `tcp server` may listen on several. */
  readonly localPort: number;
  /** Remote address, IPv4-mapped IPv6 addresses given in their IPv4 form. */
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** Set by a `tls server`: the server name the client asked for (SNI), if any. */
  readonly authority?: string;
  /** Set by a `tls server`: the negotiated application protocol, if any. */
  readonly alpn?: string;
  /** True once TLS has been terminated in front. */
  readonly secure?: boolean;
}

export interface ConnectionHandler {
  /**
   * Takes ownership of `socket`: from here the handler reads, writes and eventually destroys it.
   * Must not throw; problems with one connection end that connection only.
   */
  acceptConnection(socket: Socket, info: ConnectionInfo): void;
  /**
   * The listener in front has stopped accepting. Finish what is in flight, close idle connections
   * and end long-lived ones so that shutdown does not have to wait for the drain deadline.
   */
  drain?(): void;
}

/**
 * Takes a byte stream that is no socket: the stream a `fan` server opens to its exit, carrying what
 * its clients send. An `echo` server takes these as it takes connections.
 */
export interface StreamHandler {
  /** Takes ownership of `stream`, as acceptConnection does of a socket. Must not throw. */
  acceptStream(stream: Duplex, info: ConnectionInfo): void;
  drain?(): void;
}

/**
 * Pressure a handler reading a body may be under, such as other producers waiting for the room a
 * stalled body holds: while `active()`, a body that sends nothing for `idleMs` is given up,
 * sooner than the server's idle timeout.
 */
export interface BodyPressure {
  readonly idleMs: number;
  active(): boolean;
  /** Calls `listener` whenever the pressure may have begun; returns how to stop. */
  subscribe(listener: () => void): () => void;
}

export interface HttpRouteMatch {
  /** Path parameters captured by the matched route; empty for header-only routes. */
  readonly params: Readonly<Record<string, string>>;
  /** The matched route, absent when the binding's default exit was taken. */
  readonly route?: RouteConfig;
  /**
   * Reads the whole request body, at most the server's body limit. Past the limit it rejects with
   * an HttpError (KGATE_BODY_TOO_LARGE, 413), which the handler should let propagate: the server
   * answers it.
   */
  readBody(): Promise<Buffer>;
  /**
   * The request body chunk by chunk, for handlers that stream it. Each wait for the client's
   * next chunk is bounded by the server's body idle timeout, the whole body by its body timeout
   * (scaled to the announced length, or to `maxBytes`, unless configured); past either it
   * throws an HttpError(408), which the handler should let propagate. Time the handler spends
   * between chunks does not count. Leaving the loop early does not destroy the request: the
   * error can still be answered, and the connection is closed after it. Under `pressure`, a
   * body that stalls is given up sooner, likewise.
   */
  bodyChunks(maxBytes?: number, pressure?: BodyPressure): AsyncIterable<Buffer>;
  /** The connection the request came on: the same object for every request on it. */
  readonly connection: object;
  /** What the http server's `authorization` made of the request's credentials; absent without one. */
  readonly authorization?: Authorization;
}

export interface HttpHandler {
  /**
   * Answers one request. A thrown error or rejected promise is answered by the http server: an
   * HttpError with its code's status, anything else with 500, provided no response header went
   * out yet.
   */
  handleRequest(req: IncomingMessage, res: ServerResponse, match: HttpRouteMatch): void | Promise<void>;
  /** The server in front is shutting down: end long-lived responses. */
  drain?(): void;
  /**
   * True when the handler streams request bodies itself and bounds them by its own limit, so the
   * server's `maxBodyBytes` does not apply to the requests it takes.
   */
  readonly boundsBodies?: boolean;
}

export interface SseRequest {
  /** Request path without the query string. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  /** Path parameters captured by the matched route. */
  readonly params: Readonly<Record<string, string>>;
  /** The matched route, absent when the binding's default exit was taken. */
  readonly route?: RouteConfig;
  /** From the `Last-Event-ID` header, else the `lastEventId` query parameter; absent on a first connect. */
  readonly lastEventId?: string;
  /** What the http server's `authorization` made of the request's credentials; absent without one. */
  readonly authorization?: Authorization;
}

export interface SseEvent {
  /** Must not contain a line break. */
  readonly id?: string;
  /** The event type (`event:` field); must not contain a line break. */
  readonly type?: string;
  /** Sent as one `data:` line per line of text. */
  readonly data: string;
}

export interface SseStream {
  /**
   * Queues one event. False means the client is not keeping up: wait for `drained()` before
   * sending more. A producer that keeps sending past the stream's buffer bound gets the stream
   * closed instead of unbounded buffering. Returns false on a closed stream too (and sends nothing).
   */
  send(event: SseEvent): boolean;
  /**
   * Queues `count` events already framed by `sse/framing.ts`, in one write: a handler with several
   * events ready pays for one write rather than one per event. Returns like send().
   */
  sendFramed(frames: string, count: number): boolean;
  /**
   * Writes one event framed as `pieces` (text, or bytes such as a large value other streams send
   * too), a slice at a time as the client takes them: however large the event, no more than a
   * slice beyond the socket's buffer is queued, and nothing else goes out on the stream until the
   * event is whole. Resolves true once the event is handed over, false if the stream closed first.
   */
  sendSliced(pieces: readonly (string | Buffer)[]): Promise<boolean>;
  /** Resolves once the client has caught up, or the stream has closed. */
  drained(): Promise<void>;
  /** A `:` comment line; clients ignore it, proxies see traffic. */
  comment(text: string): void;
  /** Ends the stream; `retryMs` asks the client to reconnect after that long. Idempotent. */
  close(retryMs?: number): void;
  /** Aborts when the stream ends, whichever side ended it. */
  readonly closed: AbortSignal;
}

export interface SseHandler {
  /**
   * Called before the response head goes out: throws an HttpError to answer the request with its
   * status rather than open a stream (no route of the handler takes the path, say), so a browser
   * is told once instead of being handed a stream to reconnect to forever.
   */
  admit?(request: SseRequest): void;
  /**
   * Serves one event stream until `stream.closed` aborts or the handler closes it. A rejection is
   * logged and closes the stream.
   */
  handleEventStream(request: SseRequest, stream: SseStream): void | Promise<void>;
  /** The server in front is shutting down; its open streams are being closed. */
  drain?(): void;
}

/**
 * An error whose message is meant for the client, answered with its code's status. Wrapping a
 * failure, it takes the code that failure is answered with (see proxies/cache-clients.ts).
 */
export class HttpError extends KgateError {}

/**
 * A request refused for its credentials, answered 401 (none that verify) or 403 (they lack what
 * the route requires) with `challenge` as its `WWW-Authenticate` (RFC 6750).
 */
export class CredentialsError extends HttpError {
  readonly challenge: string;

  constructor(refusal: GuardedRefusal, message: string, challenge: string) {
    super(refusal === 'forbidden' ? 'KGATE_FORBIDDEN' : 'KGATE_UNAUTHENTICATED', message);
    this.challenge = challenge;
  }
}

/**
 * The answer to a request that a route of `guard` refused, or that lacked what a template takes
 * from `guard`'s session: `what` says what was asked for.
 */
export function refuseCredentials(
  authorization: Authorization | undefined,
  guard: string,
  what: string,
): CredentialsError {
  const refusal = refusalOf(authorization);
  const realm = `Bearer realm="${guard}"`;
  if (refusal === 'forbidden')
    return new CredentialsError(
      refusal,
      `${what}: the credentials do not grant what this route requires`,
      `${realm}, error="insufficient_scope"`,
    );
  const invalid = authorization?.presented === true;
  return new CredentialsError(
    refusal,
    `${what}: ${invalid ? 'the credentials do not verify' : 'credentials are required'}`,
    invalid ? `${realm}, error="invalid_token"` : realm,
  );
}

function hasMethod(value: unknown, method: string): boolean {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Record<string, unknown>)[method] === 'function'
  );
}

export function isConnectionHandler(binding: Binding): binding is Binding & ConnectionHandler {
  return hasMethod(binding, 'acceptConnection');
}

export function isStreamHandler(binding: Binding): binding is Binding & StreamHandler {
  return hasMethod(binding, 'acceptStream');
}

export function isHttpHandler(binding: Binding): binding is Binding & HttpHandler {
  return hasMethod(binding, 'handleRequest');
}

export function isSseHandler(binding: Binding): binding is Binding & SseHandler {
  return hasMethod(binding, 'handleEventStream');
}

/** Every exit a binding may route to: its default exit and each route's, without repeats. */
export function exitNames(context: BindingContext): string[] {
  const { exit, routes } = context.config;
  return [...new Set([...(exit === undefined ? [] : [exit]), ...routes.map((r) => r.exit)])];
}

/**
 * Looks up every exit of the binding and checks that it implements the interface `guard` tests for.
 * `accepts` completes the message "exit x (type kind) does not ..." when one does not.
 */
export function lookupExits<T>(
  context: BindingContext,
  guard: (binding: Binding) => binding is Binding & T,
  accepts: string,
): Map<string, Binding & T> {
  const exits = new Map<string, Binding & T>();
  for (const name of exitNames(context)) {
    const binding = context.lookup(name);
    if (!guard(binding)) {
      const config = (binding as Binding & { config?: { type?: unknown; kind?: unknown } }).config;
      const what =
        typeof config?.type === 'string' && typeof config.kind === 'string'
          ? ` (${config.type} ${config.kind})`
          : '';
      throw new Error(`exit ${name}${what} does not ${accepts}`);
    }
    exits.set(name, binding);
  }
  return exits;
}

/**
 * The URL of a request as routes see it: the path and query of an origin-form target (`/items?x`),
 * or of an absolute-form one (`http://host/items`); undefined for any other (`*`, garbage), which
 * no route serves. An origin-form target is never read as a reference relative to some base: that
 * reading takes `//host/items` for a host and the path `/items`, and throws on `//`.
 */
export function requestUrl(target: string | undefined): URL | undefined {
  const text = target ?? '/';
  try {
    return new URL(text.startsWith('/') ? `http://localhost${text}` : text);
  } catch {
    return undefined;
  }
}

/** `::ffff:10.0.0.1` as `10.0.0.1`, so that IPv4 `cidr` routes match on dual-stack listeners. */
export function normalizeAddress(address: string | undefined): string {
  if (address === undefined) return '';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped?.[1] ?? address;
}
