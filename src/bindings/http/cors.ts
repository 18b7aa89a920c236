import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * Response headers browsers hide from scripts unless exposed, and that kgate's proxies send: entity
 * tags and locations for conditional reads and produce, Retry-After for back-off.
 */
const DEFAULT_EXPOSED = [
  'ETag',
  'Location',
  'Content-Location',
  'Retry-After',
  'Preference-Applied',
  'Link',
  'Kgate-Partial',
];

export interface CorsPolicy {
  readonly policy: 'same-origin' | 'cross-origin';
  /** Undefined: any. */
  readonly origins?: readonly string[];
  readonly methods?: readonly string[];
  readonly headers?: readonly string[];
  readonly credentials: boolean;
  readonly maxAge?: number;
  readonly expose: readonly string[];
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

/** The `access-control` option, or undefined when absent (no CORS handling at all). */
export function parseCorsPolicy(option: CorsJson | undefined): CorsPolicy | undefined {
  if (option === undefined) return undefined;
  const { origins, methods, headers, credentials } = option.allow ?? {};
  const maxAge = option['max-age'];
  return {
    policy: option.policy,
    ...(origins === undefined || origins.includes('*') ? {} : { origins }),
    ...(methods === undefined || methods.includes('*')
      ? {}
      : { methods: methods.map((m) => m.toUpperCase()) }),
    ...(headers === undefined || headers.includes('*') ? {} : { headers }),
    credentials: credentials === true,
    ...(maxAge === undefined ? {} : { maxAge }),
    expose: option.expose?.headers ?? DEFAULT_EXPOSED,
  };
}

function isCrossOrigin(origin: string, req: IncomingMessage): boolean {
  try {
    return new URL(origin).host.toLowerCase() !== (req.headers.host ?? '').toLowerCase();
  } catch {
    return true;
  }
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
  if (origin === undefined) return { kind: 'continue' };
  const crossOrigin = isCrossOrigin(origin, req);
  const requestedMethod = req.headers['access-control-request-method'];
  const preflight = req.method === 'OPTIONS' && typeof requestedMethod === 'string';
  if (policy.policy === 'same-origin') {
    return crossOrigin
      ? { kind: 'forbidden', message: `cross-origin requests from ${origin} are not allowed` }
      : { kind: 'continue' };
  }
  res.appendHeader('Vary', 'Origin');
  // `null` is what sandboxed frames and file: pages send: anyone can make it. The schema keeps it
  // out of an origin list with credentials; this keeps it from ever being answered with them.
  if (
    (policy.origins !== undefined && !policy.origins.includes(origin)) ||
    (policy.credentials && (policy.origins === undefined || origin === 'null'))
  ) {
    return { kind: 'forbidden', message: `origin ${origin} is not allowed` };
  }
  res.setHeader('Access-Control-Allow-Origin', origin);
  if (policy.credentials) res.setHeader('Access-Control-Allow-Credentials', 'true');
  if (!preflight) {
    if (policy.expose.length > 0) res.setHeader('Access-Control-Expose-Headers', policy.expose.join(', '));
    return { kind: 'continue' };
  }
  const method = requestedMethod.toUpperCase();
  if (policy.methods !== undefined && !policy.methods.includes(method)) {
    return { kind: 'forbidden', message: `method ${method} is not allowed for cross-origin requests` };
  }
  res.appendHeader('Vary', ['Access-Control-Request-Method', 'Access-Control-Request-Headers']);
  res.setHeader('Access-Control-Allow-Methods', policy.methods?.join(', ') ?? method);
  const requestedHeaders = req.headers['access-control-request-headers'];
  const allowHeaders = policy.headers?.join(', ') ?? requestedHeaders;
  if (allowHeaders !== undefined && allowHeaders !== '')
    res.setHeader('Access-Control-Allow-Headers', allowHeaders);
  if (policy.maxAge !== undefined) res.setHeader('Access-Control-Max-Age', String(policy.maxAge));
  res.writeHead(204, { 'Content-Length': '0' });
  res.end();
  return { kind: 'answered' };
}
