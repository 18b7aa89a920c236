import { parseCorsPolicy, type CorsJson, type CorsPolicy } from './cors.ts';
import type { HttpVersion } from './versions.ts';

/** An http server's options as the schema admits them. */
export interface HttpServerOptionsJson {
  readonly versions?: readonly HttpVersion[];
  readonly 'access-control'?: CorsJson;
  /** Zilla guard credentials; accepted for Zilla files, with a warning, and not enforced. */
  readonly authorization?: { readonly [guard: string]: object };
  readonly overrides?: { readonly [name: string]: string };
}

export interface HttpServerOptions {
  /** Absent: both. */
  readonly versions?: readonly HttpVersion[];
  /** Absent: no CORS handling at all. */
  readonly cors?: CorsPolicy;
  /** Headers set on every request before it is routed: lower-case name, value. */
  readonly overrides: readonly (readonly [string, string])[];
}

/** An http server's options that passed its schema. */
export function httpServerOptions(options: unknown): HttpServerOptions {
  const json = options as HttpServerOptionsJson;
  const cors = parseCorsPolicy(json['access-control']);
  return {
    ...(json.versions === undefined ? {} : { versions: json.versions }),
    ...(cors === undefined ? {} : { cors }),
    overrides: Object.entries(json.overrides ?? {}).map(([name, value]) => [name.toLowerCase(), value]),
  };
}
