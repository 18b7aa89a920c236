import { decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';
import type { Logger } from 'pino';
import type { Guard, GuardSession, GuardVerdict } from '../guard.ts';
import { InlineKeySet, RemoteKeySet, type KeySet, type RemoteKeySetTuning } from './keys.ts';
import { jwtGuardOptions, type JwtGuardOptions } from './options.ts';

/**
 * The `jwt` guard: verifies compact JWS tokens with jose against the configured keys, issuer and
 * audience, and turns their claims into a session. A token that verified is kept (up to
 * `maxCachedTokens`, until it expires), so a client presenting the same token again, on every
 * request of a connection or on every reconnect of an event stream, costs a map lookup rather
 * than a signature check.
 */

/** Longer tokens are refused before any decoding: real ones are a few KiB at most. */
export const MAX_TOKEN_CHARS = 16 * 1024;

export interface JwtGuardTuning extends RemoteKeySetTuning {
  /** Verified tokens kept. Default 10,000. */
  readonly maxCachedTokens?: number;
  /** The clock, in epoch milliseconds; tests move it. */
  readonly now?: () => number;
}

// An algorithm name a token gives is the client's text: it is named in a refusal only when it
// looks like one, so that a log line never carries what a client made up.
const ALGORITHM_NAME = /^[A-Za-z0-9]{2,16}$/;

function refuse(reason: string): GuardVerdict {
  return { refused: reason };
}

/** The value at a dot separated path of claims. */
function claimAt(payload: JWTPayload, path: readonly string[]): unknown {
  let current: unknown = payload;
  for (const part of path) {
    if (typeof current !== 'object' || current === null || Array.isArray(current)) return undefined;
    current = Object.hasOwn(current, part) ? (current as Record<string, unknown>)[part] : undefined;
  }
  return current;
}

function scopesOf(value: unknown): string[] {
  if (typeof value === 'string') return value.split(/\s+/).filter((s) => s !== '');
  if (Array.isArray(value)) return value.filter((s): s is string => typeof s === 'string');
  return [];
}

function reasonOf(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'token has expired';
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf') return 'token is not valid yet';
    return `claim ${error.claim} does not hold what the guard requires`;
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'signature does not verify';
  if (error instanceof errors.JOSEAlgNotAllowed) return 'algorithm not allowed';
  if (error instanceof errors.JWTInvalid || error instanceof errors.JWSInvalid) return 'token is malformed';
  return 'token does not verify';
}

export class JwtGuard implements Guard {
  readonly name: string;
  readonly #options: JwtGuardOptions;
  readonly #keys: KeySet;
  readonly #maxCached: number;
  readonly #now: () => number;
  readonly #verified = new Map<string, GuardSession>();

  constructor(name: string, options: unknown, log: Logger, tuning: JwtGuardTuning = {}) {
    this.name = name;
    this.#options = jwtGuardOptions(options);
    const keys = this.#options.keys;
    this.#keys = 'url' in keys ? new RemoteKeySet(keys.url, log, tuning) : new InlineKeySet(keys.inline);
    this.#maxCached = tuning.maxCachedTokens ?? 10_000;
    this.#now = tuning.now ?? Date.now;
  }

  /** Imports inline keys (a key that cannot be used fails here) and starts fetching a key set. */
  async start(): Promise<void> {
    if (this.#keys instanceof InlineKeySet) await this.#keys.check();
    else if (this.#keys instanceof RemoteKeySet) void this.#keys.refresh();
  }

  close(): void {
    this.#keys.close();
    this.#verified.clear();
  }

  /** Tokens kept as verified right now. */
  get cachedTokens(): number {
    return this.#verified.size;
  }

  async verify(token: string): Promise<GuardVerdict> {
    const now = this.#now();
    const kept = this.#verified.get(token);
    if (kept !== undefined) {
      if (kept.expiresAt === undefined || now < kept.expiresAt) return kept;
      this.#verified.delete(token);
      return refuse('token has expired');
    }
    const verdict = await this.#verify(token, now);
    if (!('refused' in verdict)) {
      if (this.#verified.size >= this.#maxCached) {
        const oldest = this.#verified.keys().next();
        if (oldest.done !== true) this.#verified.delete(oldest.value);
      }
      this.#verified.set(token, verdict);
    }
    return verdict;
  }

  async #verify(token: string, now: number): Promise<GuardVerdict> {
    if (token.length > MAX_TOKEN_CHARS) return refuse(`token is longer than ${MAX_TOKEN_CHARS} characters`);
    let alg: unknown;
    let kid: unknown;
    try {
      ({ alg, kid } = decodeProtectedHeader(token));
    } catch {
      return refuse('token is not a compact JWS');
    }
    if (token.split('.').length !== 3) return refuse('token is not a compact JWS');
    if (typeof alg !== 'string' || alg.toLowerCase() === 'none') return refuse('token is not signed');
    if (typeof kid !== 'string') return refuse('token names no key (kid)');
    const key = await this.#keys.lookup(kid);
    if (key === undefined) return refuse('token names a key (kid) the guard does not have');
    if (!key.algorithms.includes(alg)) {
      const named = ALGORITHM_NAME.test(alg) ? `algorithm ${alg}` : 'its algorithm';
      return refuse(`${named} is not allowed with key ${key.kid} (${key.type})`);
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, await key.keyFor(alg), {
        algorithms: [alg],
        ...(this.#options.issuer === undefined ? {} : { issuer: this.#options.issuer }),
        ...(this.#options.audience === undefined ? {} : { audience: this.#options.audience }),
        currentDate: new Date(now),
      }));
    } catch (error) {
      return refuse(reasonOf(error));
    }
    return this.#session(payload);
  }

  #session(payload: JWTPayload): GuardSession {
    const options = this.#options;
    const identity = claimAt(payload, [options.identityClaim]);
    let roles = claimAt(payload, [options.rolesClaim]);
    if (roles === undefined && options.rolesClaim === 'scope') roles = payload['scp'];
    const attributes: Record<string, string> = {};
    for (const [name, path] of options.attributes) {
      const value = claimAt(payload, path);
      if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean')
        attributes[name] = String(value);
    }
    const expiresAt = typeof payload.exp === 'number' ? payload.exp * 1000 : undefined;
    return {
      guard: this.name,
      ...(typeof identity === 'string' ? { identity } : {}),
      scopes: new Set(scopesOf(roles)),
      attributes,
      ...(expiresAt === undefined ? {} : { expiresAt }),
      ...(expiresAt === undefined || options.challengeMs === undefined
        ? {}
        : { challengeAt: expiresAt - options.challengeMs }),
    };
  }
}
