import { createHash, type Hash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { RecordHeader } from '../kafka/client/index.ts';

// The Kafka headers of a produced request, and the correlation id a request-reply produce derives
// from them, as Zilla's http-kafka binding writes both: a service written against Zilla reads the
// same headers, and a resent identical request carries the same correlation id, so it finds the
// reply to the first one.

/**
 * Request headers a request-reply produce does not pass on: the body's framing (the record has
 * its own), `prefer` (said to the gateway, not the service), and what HTTP/1.1 turns into a
 * pseudo-header or keeps to the connection.
 */
const NOT_PASSED = new Set(['content-length', 'prefer', 'host', 'connection', 'http2-settings']);

/** An If-Match tag that carries a value for the service after kgate's own part: `token/value`. */
const IF_MATCH_FOR_SERVICE = /^[A-Za-z0-9_=-]+\/(.*)$/s;

/** Default ports Zilla adds to an authority that names none. */
const SCHEME_PORTS: Readonly<Record<string, string>> = { http: '80', https: '443' };

/** What is read of a request: an IncomingMessage, or its HTTP/2 counterpart. */
export interface RequestHead {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: readonly string[];
  /** A TLS socket says `encrypted: true`. */
  readonly socket: object;
}

function latin1(text: string): Buffer {
  // Node reads header bytes as latin1, so this gives back the bytes the client sent.
  return Buffer.from(text, 'latin1');
}

function authorityOf(req: RequestHead, scheme: string): string | undefined {
  const given = req.headers[':authority'] ?? req.headers.host;
  const authority = Array.isArray(given) ? given[0] : given;
  if (authority === undefined) return undefined;
  return authority.includes(':') ? authority : `${authority}:${SCHEME_PORTS[scheme] ?? '80'}`;
}

/**
 * Every header of `req` as a request-reply produce passes it on, in Zilla's order: `:scheme`,
 * `:method`, `:path`, `:authority`, then the request's headers as sent (names in lower case,
 * repeated ones repeated), less those in NOT_PASSED; `if-match` only with a value after a `/`,
 * which is what is passed.
 */
export function forwardedHeaders(req: RequestHead): RecordHeader[] {
  const { socket } = req;
  const scheme = 'encrypted' in socket && socket.encrypted === true ? 'https' : 'http';
  const headers: RecordHeader[] = [
    { key: ':scheme', value: latin1(scheme) },
    { key: ':method', value: latin1(req.method ?? 'GET') },
    { key: ':path', value: latin1(req.url ?? '/') },
  ];
  const authority = authorityOf(req, scheme);
  if (authority !== undefined) headers.push({ key: ':authority', value: latin1(authority) });
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] ?? '').toLowerCase();
    let value = raw[i + 1] ?? '';
    if (name.startsWith(':') || NOT_PASSED.has(name)) continue;
    if (name === 'if-match') {
      const forService = IF_MATCH_FOR_SERVICE.exec(value)?.[1];
      if (forService === undefined) continue;
      value = forService;
    }
    headers.push({ key: name, value: latin1(value) });
  }
  return headers;
}

/**
 * The correlation id of a request-reply produce: the request's idempotency key (a random one
 * when it sent none), `-`, and the hex MD5 of the record's key, its headers' names and values in
 * order and its value, as Zilla derives it. Fed in that order; the id is known once the body is.
 */
export class CorrelationHash {
  readonly #prefix: string;
  readonly #md5: Hash = createHash('md5');
  #id: string | undefined;

  constructor(idempotencyKey: string) {
    this.#prefix = idempotencyKey;
  }

  /** The id's length, known before the body: its header can be sized before the value is staged. */
  get length(): number {
    return Buffer.byteLength(this.#prefix) + 33;
  }

  update(bytes: Buffer | string | null): void {
    if (this.#id !== undefined) throw new Error('the correlation id was already derived');
    if (bytes !== null) this.#md5.update(bytes);
  }

  updateHeaders(headers: readonly RecordHeader[]): void {
    for (const h of headers) {
      this.update(h.key);
      this.update(h.value);
    }
  }

  /** The id, once everything was fed. */
  digest(): string {
    this.#id ??= `${this.#prefix}-${this.#md5.digest('hex')}`;
    return this.#id;
  }
}
