/** One key as a JWK; Zilla's schema requires `kty` and `kid`, the rest depends on the key type. */
export interface JwkJson {
  readonly kty: string;
  readonly kid: string;
  readonly alg?: string;
  readonly [parameter: string]: unknown;
}

/** A jwt guard's options as the schema admits them (Zilla's guard-jwt shape). */
export interface JwtGuardOptionsJson {
  readonly issuer?: string;
  readonly audience?: string;
  /** The claim holding the scopes; `scope` by default (space separated, or a list). */
  readonly roles?: string;
  /** Inline JWKs, or the URL of a JWK set (`http://` or `https://`). */
  readonly keys: readonly JwkJson[] | string;
  /** Seconds before expiry at which a stream is challenged to renew its token. */
  readonly challenge?: number;
  /** The claim naming who the client is; `sub` by default. */
  readonly identity?: string;
  /** Attribute name to claim path (dot separated), offered as `${guarded['name'].attributes.x}`. */
  readonly attributes?: { readonly [name: string]: string };
}

export interface JwtGuardOptions {
  readonly issuer?: string;
  readonly audience?: string;
  readonly rolesClaim: string;
  readonly keys: { readonly inline: readonly JwkJson[] } | { readonly url: string };
  readonly challengeMs?: number;
  readonly identityClaim: string;
  readonly attributes: readonly (readonly [string, readonly string[]])[];
}

/** A jwt guard's options that passed its schema. */
export function jwtGuardOptions(options: unknown): JwtGuardOptions {
  const json = options as JwtGuardOptionsJson;
  const keys = json.keys;
  return {
    ...(json.issuer === undefined ? {} : { issuer: json.issuer }),
    ...(json.audience === undefined ? {} : { audience: json.audience }),
    rolesClaim: json.roles ?? 'scope',
    keys: typeof keys === 'string' ? { url: keys } : { inline: keys },
    ...(json.challenge === undefined ? {} : { challengeMs: json.challenge * 1000 }),
    identityClaim: json.identity ?? 'sub',
    attributes: Object.entries(json.attributes ?? {}).map(([name, path]) => [name, path.split('.')]),
  };
}
