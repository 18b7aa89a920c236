import type { IncomingMessage, ServerResponse } from 'node:http';

// CORS as Zilla's http binding answers it under `policy: cross-origin`: a list left out of
// `allow` is answered with `*` rather than with what the request named, an `allow` that names
// origins (or allows credentials) is answered with the request's own origin, a same-origin request
// gets no CORS headers, and the binding answers preflights itself. Where kgate is stricter (a
// preflight must be allowed every header it names, credentials need a list of origins) it says so
// in docs/zilla.md.

/**
 * Response headers a script may read when credentials are allowed and no `expose` list is given:
 * `*` does not count for credentialed requests, so these are named, the ones kgate's proxies send.
 */
const CREDENTIALED_EXPOSED = [
  'ETag',
  'Location',
  'Content-Location',
  'Retry-After',
  'Preference-Applied',
  'Link',
  'Kgate-Partial',
];

/** Response headers scripts read anyway (Fetch's CORS-safelisted ones): never worth naming. */
const SAFELISTED = new Set([
  'cache-control',
  'content-language',
  'content-length',
  'content-type',
  'expires',
  'last-modified',
  'pragma',
]);

export interface CorsPolicy {
  readonly policy: 'same-origin' | 'cross-origin';
  /** Undefined: any, answered `*`. Each as an origin serialises (`http://host`, default port left out). */
  readonly origins?: readonly string[];
  /** Undefined: any, answered `*`. */
  readonly methods?: readonly string[];
  /** Undefined: any, answered `*`; lower case. */
  readonly headers?: readonly string[];
  readonly credentials: boolean;
  readonly maxAge?: number;
  /** Exposed response headers: named, or `*` (any) when neither a list nor credentials name them. */
  readonly expose: readonly string[] | '*';
}

/** The `access-control` option as the schema admits it. */
export interface CorsJson {
  readonly policy: 'same-origin' | 'cross-origin';
  readonly allow?: {
    readonly origins?: readonly string[];
    readonly methods?: readonly string[];
    readonly headers?: readonly string[];
    readonly credentials?: boolean;
  };
  readonly 'max-age'?: number;
  readonly expose?: { readonly headers?: readonly string[] };
}

const WEB_ORIGIN = /^https?:\/\/[^/]+$/i;

/**
 * An origin as browsers serialise it, so that `http://a.example:80` and `http://a.example` are
 * one, as Zilla takes them; anything else (`null`, a made-up value) as it is.
 */
function originKey(origin: string): string {
  if (!WEB_ORIGIN.test(origin)) return origin;
  try {
    return new URL(origin).origin;
  } catch {
    return origin;
  }
}

/** The `access-control` option, or undefined when absent (no CORS handling at all). */
export function parseCorsPolicy(option: CorsJson | undefined): CorsPolicy | undefined {
  if (option === undefined) return undefined;
  const { origins, methods, headers, credentials } = option.allow ?? {};
  const maxAge = option['max-age'];
  const listed = option.expose?.headers?.filter((h) => !SAFELISTED.has(h.toLowerCase()));
  return {
    policy: option.policy,
    ...(origins === undefined || origins.includes('*') ? {} : { origins: origins.map(originKey) }),
    ...(methods === undefined || methods.includes('*')
      ? {}
      : { methods: methods.map((m) => m.toUpperCase()) }),
    ...(headers === undefined || headers.includes('*')
      ? {}
      : { headers: headers.map((h) => h.toLowerCase()) }),
    credentials: credentials === true,
    ...(maxAge === undefined ? {} : { maxAge }),
    expose: listed ?? (credentials === true ? CREDENTIALED_EXPOSED : '*'),
  };
}

/** Whether `origin` is the request's own: same scheme, host and port (default ports filled in). */
function isSameOrigin(origin: string, req: IncomingMessage): boolean {
  if (!WEB_ORIGIN.test(origin)) return false;
  const scheme = 'encrypted' in req.socket && req.socket.encrypted === true ? 'https' : 'http';
  const authority = req.headers[':authority'] ?? req.headers.host;
  if (typeof authority !== 'string' || authority === '') return false;
  try {
    return new URL(origin).origin === new URL(`${scheme}://${authority}`).origin;
  } catch {
    return false;
  }
}

/** The names of an Access-Control-Request-Headers value, lower case. */
function requestedHeaderNames(value: string): string[] {
  return value
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name !== '');
}

export type CorsOutcome =
  /** Not a CORS matter, or allowed: headers (if any) are set on `res`, go on with the request. */
  | { readonly kind: 'continue' }
  /** A preflight, already answered. */
  | { readonly kind: 'answered' }
  | { readonly kind: 'forbidden'; readonly message: string };

/**
 * Applies the policy to one request: sets the CORS response headers on `res`, answers preflight
 * requests, or says why the request is refused.
 */
export function applyCors(policy: CorsPolicy, req: IncomingMessage, res: ServerResponse): CorsOutcome {
  const origin = req.headers.origin;
  const sameOrigin = origin !== undefined && isSameOrigin(origin, req);
  if (policy.policy === 'same-origin') {
    return origin === undefined || sameOrigin
      ? { kind: 'continue' }
      : { kind: 'forbidden', message: `cross-origin requests from ${origin} are not allowed` };
  }
  // A same-origin request is no CORS matter, under any policy.
  if (sameOrigin) return { kind: 'continue' };
  const requestedMethod = req.headers['access-control-request-method'];
  const requestedHeaders = req.headers['access-control-request-headers'];
  const preflight =
    req.method === 'OPTIONS' &&
    origin !== undefined &&
    (requestedMethod !== undefined || requestedHeaders !== undefined);
  // `null` is what sandboxed frames and file: pages send: anyone can make it. The schema keeps it
  // out of an origin list with credentials; this keeps it from ever being answered with them.
  if (
    origin !== undefined &&
    ((policy.origins !== undefined && !policy.origins.includes(originKey(origin))) ||
      (policy.credentials && (policy.origins === undefined || origin === 'null')))
  ) {
    return { kind: 'forbidden', message: `origin ${origin} is not allowed` };
  }
  // Zilla answers `*` to a request without an Origin too: no browser made it, so it reads nothing.
  const named = origin !== undefined && (policy.origins !== undefined || policy.credentials);
  res.setHeader('Access-Control-Allow-Origin', named ? origin : '*');
  if (named) res.appendHeader('Vary', 'Origin');
  if (policy.credentials) res.setHeader('Access-Control-Allow-Credentials', 'true');
  if (!preflight) {
    const expose = policy.expose === '*' ? '*' : policy.expose.join(', ');
    if (expose !== '') res.setHeader('Access-Control-Expose-Headers', expose);
    return { kind: 'continue' };
  }
  if (typeof requestedMethod === 'string') {
    const method = requestedMethod.toUpperCase();
    if (policy.methods !== undefined && !policy.methods.includes(method))
      return { kind: 'forbidden', message: `method ${method} is not allowed for cross-origin requests` };
    const explicit = policy.methods !== undefined || policy.credentials;
    res.setHeader('Access-Control-Allow-Methods', explicit ? requestedMethod : '*');
  }
  if (typeof requestedHeaders === 'string') {
    const allowed = policy.headers;
    const refused = requestedHeaderNames(requestedHeaders).filter(
      (name) => allowed !== undefined && !allowed.includes(name),
    );
    if (refused.length > 0)
      return {
        kind: 'forbidden',
        message: `request headers ${refused.join(', ')} are not allowed for cross-origin requests`,
      };
    const explicit = allowed !== undefined || policy.credentials;
    res.setHeader('Access-Control-Allow-Headers', explicit ? requestedHeaders : '*');
  }
  if (policy.maxAge !== undefined) res.setHeader('Access-Control-Max-Age', String(policy.maxAge));
  res.writeHead(204);
  res.end();
  return { kind: 'answered' };
}
