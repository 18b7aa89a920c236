import { credentialsSources, type AuthorizationJson, type CredentialsSources } from './authorization.ts';
import { parseCorsPolicy, type CorsJson, type CorsPolicy } from './cors.ts';
import type { ModelJson } from '../../models/config.ts';
import type { HttpVersion } from './versions.ts';

/** An http server's options as the schema admits them. */
export interface HttpServerOptionsJson {
  readonly versions?: readonly HttpVersion[];
  readonly requests?: readonly HttpRequestRuleJson[];
  readonly 'access-control'?: CorsJson;
  /** The guard verifying requests' credentials, and where requests carry them. */
  readonly authorization?: AuthorizationJson;
  readonly overrides?: { readonly [name: string]: string };
  readonly timeouts?: {
    readonly headers?: number;
    readonly 'keep-alive'?: number;
    readonly body?: number;
    readonly 'body-idle'?: number;
  };
  readonly limits?: { readonly 'pipelined-requests'?: number; readonly 'concurrent-streams'?: number };
}

/** One entry of an http server's `requests`. */
export interface HttpRequestRuleJson {
  readonly path: string;
  readonly method?: string;
  readonly 'content-type'?: readonly string[];
  readonly content?: ModelJson;
}

/** What one connection may have in flight. */
export interface HttpConnectionLimits {
  /** HTTP/1.1 requests received on one connection and not answered yet, the one being answered included. */
  readonly pipelinedRequests: number;
  /** HTTP/2 streams open at once on one connection (SETTINGS_MAX_CONCURRENT_STREAMS). */
  readonly concurrentStreams: number;
}

export const DEFAULT_CONNECTION_LIMITS: HttpConnectionLimits = {
  // Browsers do not pipeline at all, and tools that do keep a few requests in flight.
  pipelinedRequests: 16,
  // What HTTP/2 servers commonly allow; a page keeping many event streams open over one connection fits.
  concurrentStreams: 100,
};

/** Timeouts set in the options, in milliseconds; absent ones take the server's defaults. */
export interface HttpServerTimeouts {
  readonly headersTimeoutMs?: number;
  readonly keepAliveTimeoutMs?: number;
  readonly bodyTimeoutMs?: number;
  readonly bodyIdleTimeoutMs?: number;
}

export interface HttpServerOptions {
  /** Absent: both. */
  readonly versions?: readonly HttpVersion[];
  /** Absent: no CORS handling at all. */
  readonly cors?: CorsPolicy;
  /** Absent: requests' credentials are not looked at, and guarded routes take no request. */
  readonly authorization?: CredentialsSources;
  /** Headers set on every request before it is routed: lower-case name, value. */
  readonly overrides: readonly (readonly [string, string])[];
  readonly timeouts: HttpServerTimeouts;
  readonly limits: HttpConnectionLimits;
  /** The `requests` entries as written; the server compiles them against the config's catalogs. */
  readonly requests: readonly HttpRequestRuleJson[];
}

function ms(seconds: number | undefined): number | undefined {
  return seconds === undefined ? undefined : Math.round(seconds * 1000);
}

/** An http server's options that passed its schema. */
export function httpServerOptions(options: unknown): HttpServerOptions {
  const json = options as HttpServerOptionsJson;
  const cors = parseCorsPolicy(json['access-control']);
  const authorization = credentialsSources(json.authorization);
  return {
    ...(json.versions === undefined ? {} : { versions: json.versions }),
    ...(cors === undefined ? {} : { cors }),
    ...(authorization === undefined ? {} : { authorization }),
    overrides: Object.entries(json.overrides ?? {}).map(([name, value]) => [name.toLowerCase(), value]),
    timeouts: httpServerTimeouts(json.timeouts ?? {}),
    requests: json.requests ?? [],
    limits: {
      pipelinedRequests: json.limits?.['pipelined-requests'] ?? DEFAULT_CONNECTION_LIMITS.pipelinedRequests,
      concurrentStreams: json.limits?.['concurrent-streams'] ?? DEFAULT_CONNECTION_LIMITS.concurrentStreams,
    },
  };
}

function httpServerTimeouts(json: NonNullable<HttpServerOptionsJson['timeouts']>): HttpServerTimeouts {
  const headers = ms(json.headers);
  const keepAlive = ms(json['keep-alive']);
  const body = ms(json.body);
  const bodyIdle = ms(json['body-idle']);
  return {
    ...(headers === undefined ? {} : { headersTimeoutMs: headers }),
    ...(keepAlive === undefined ? {} : { keepAliveTimeoutMs: keepAlive }),
    ...(body === undefined ? {} : { bodyTimeoutMs: body }),
    ...(bodyIdle === undefined ? {} : { bodyIdleTimeoutMs: bodyIdle }),
  };
}
