import { importJWK, type CryptoKey, type JWK } from 'jose';
import type { Logger } from 'pino';
import type { JwkJson } from './options.ts';

/**
 * The public keys a jwt guard checks signatures with, by `kid`: given inline, or fetched as a JWK
 * set from a URL. Each key admits only the algorithms of its type (its `alg` alone when it names
 * one), so a token cannot choose how it is checked: an `HS256` token is never checked with an RSA
 * or EC public key taken as an HMAC secret.
 */

const ALGORITHMS_BY_TYPE: Readonly<Record<string, readonly string[]>> = {
  RSA: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'],
  oct: ['HS256', 'HS384', 'HS512'],
  OKP: ['EdDSA', 'Ed25519'],
};

const EC_ALGORITHM_BY_CURVE: Readonly<Record<string, string>> = {
  'P-256': 'ES256',
  'P-384': 'ES384',
  'P-521': 'ES512',
};

/** The algorithms a JWK admits: its own `alg` if it fits its type, else those of its type. */
function algorithmsOf(jwk: JwkJson): readonly string[] {
  const byType =
    jwk.kty === 'EC'
      ? [EC_ALGORITHM_BY_CURVE[String(jwk['crv'])] ?? ''].filter((a) => a !== '')
      : (ALGORITHMS_BY_TYPE[jwk.kty] ?? []);
  if (jwk.alg === undefined) return byType;
  return byType.includes(jwk.alg) ? [jwk.alg] : [];
}

// Zilla's own examples write RSA moduli in standard base64; JWKs want base64url without padding.
const BASE64_MEMBERS: ReadonlySet<string> = new Set(['n', 'e', 'x', 'y', 'k']);

// Private parts, if a key set carries them by mistake, are never imported.
const PRIVATE_MEMBERS: ReadonlySet<string> = new Set(['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth']);

function asJwk(json: JwkJson): JWK {
  const jwk: Record<string, unknown> = {};
  for (const [member, value] of Object.entries(json)) {
    if (PRIVATE_MEMBERS.has(member)) continue;
    jwk[member] =
      BASE64_MEMBERS.has(member) && typeof value === 'string'
        ? value.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
        : value;
  }
  return jwk as JWK;
}

export class KeyEntry {
  readonly kid: string;
  readonly type: string;
  readonly algorithms: readonly string[];
  readonly #jwk: JWK;
  readonly #imported = new Map<string, Promise<CryptoKey | Uint8Array>>();

  constructor(json: JwkJson) {
    this.kid = json.kid;
    this.type = json.kty;
    this.algorithms = algorithmsOf(json);
    this.#jwk = asJwk(json);
  }

  /** The key as `alg` uses it; `alg` must be one of `algorithms`. */
  keyFor(alg: string): Promise<CryptoKey | Uint8Array> {
    let key = this.#imported.get(alg);
    if (key === undefined) {
      key = importJWK({ ...this.#jwk, alg }, alg);
      this.#imported.set(alg, key);
    }
    return key;
  }

  /** Imports the key for each algorithm it admits: a key that cannot be imported fails here. */
  async check(): Promise<void> {
    if (this.algorithms.length === 0)
      throw new Error(`key ${this.kid}: no algorithm fits key type ${this.type}`);
    for (const alg of this.algorithms) {
      try {
        await this.keyFor(alg);
      } catch (error) {
        throw new Error(`key ${this.kid}: cannot be used for ${alg}: ${messageOf(error)}`, { cause: error });
      }
    }
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export interface KeySet {
  /** The key a token names, or undefined when the set has none by that id. */
  lookup(kid: string): Promise<KeyEntry | undefined>;
  close(): void;
}

export class InlineKeySet implements KeySet {
  readonly #keys: ReadonlyMap<string, KeyEntry>;

  constructor(keys: readonly JwkJson[]) {
    this.#keys = new Map(keys.map((json) => [json.kid, new KeyEntry(json)]));
  }

  async lookup(kid: string): Promise<KeyEntry | undefined> {
    return this.#keys.get(kid);
  }

  /** Imports every key, so a key that cannot be used fails the start, not a request. */
  async check(): Promise<void> {
    for (const key of this.#keys.values()) await key.check();
  }

  close(): void {}
}

export interface RemoteKeySetTuning {
  /** Longest one fetch may take. Default 5 s. */
  readonly timeoutMs?: number;
  /** Tries per refresh, the first included. Default 3. */
  readonly attempts?: number;
  /** Wait before the second try, doubled for each further one. Default 250 ms. */
  readonly retryDelayMs?: number;
  /**
   * Shortest time between two refreshes a token's unknown `kid` may cause, so that tokens naming
   * made-up ids cannot make kgate fetch the set once per request. Default 30 s.
   */
  readonly minRefreshMs?: number;
  /** Largest JWK set accepted, in bytes. Default 1 MiB. */
  readonly maxBytes?: number;
}

const REMOTE_DEFAULTS: Required<RemoteKeySetTuning> = {
  timeoutMs: 5_000,
  attempts: 3,
  retryDelayMs: 250,
  minRefreshMs: 30_000,
  maxBytes: 1024 * 1024,
};

function isJwkJson(value: unknown): value is JwkJson {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  return typeof record['kty'] === 'string' && typeof record['kid'] === 'string';
}

/**
 * A JWK set fetched from a URL: fetched when first needed, kept, and fetched again when a token
 * names a `kid` the set lacks (keys rotated at the issuer), at most once per `minRefreshMs`. A
 * fetch that fails is tried again a bounded number of times with doubling delays; past them the
 * keys already held stay in use, and the failure is logged once per refresh.
 */
export class RemoteKeySet implements KeySet {
  readonly #url: string;
  readonly #log: Logger;
  readonly #tuning: Required<RemoteKeySetTuning>;
  readonly #closed = new AbortController();
  #keys: ReadonlyMap<string, KeyEntry> = new Map();
  #refreshedAt = Number.NEGATIVE_INFINITY;
  #refreshing: Promise<void> | undefined;
  /** Fetches made, for tests and the refresh bound. */
  fetches = 0;

  constructor(url: string, log: Logger, tuning: RemoteKeySetTuning = {}) {
    this.#url = url;
    this.#log = log;
    this.#tuning = { ...REMOTE_DEFAULTS, ...tuning };
  }

  async lookup(kid: string): Promise<KeyEntry | undefined> {
    const held = this.#keys.get(kid);
    if (held !== undefined) return held;
    if (this.#refreshing === undefined && performance.now() - this.#refreshedAt < this.#tuning.minRefreshMs)
      return undefined;
    await this.refresh();
    return this.#keys.get(kid);
  }

  /** Fetches the set again, unless a fetch is under way already: then waits for that one. */
  refresh(): Promise<void> {
    this.#refreshing ??= this.#fetchWithRetries().finally(() => {
      this.#refreshedAt = performance.now();
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  close(): void {
    this.#closed.abort();
  }

  async #fetchWithRetries(): Promise<void> {
    let delay = this.#tuning.retryDelayMs;
    for (let attempt = 1; ; attempt++) {
      try {
        this.#keys = await this.#fetchOnce();
        return;
      } catch (error) {
        if (this.#closed.signal.aborted) return;
        if (attempt >= this.#tuning.attempts) {
          this.#log.warn(
            { keys: this.#where(), attempts: attempt, reason: messageOf(error), held: this.#keys.size },
            'JWK set could not be fetched; the keys already held stay in use',
          );
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, delay * (0.5 + Math.random())).unref());
        delay *= 2;
      }
    }
  }

  async #fetchOnce(): Promise<ReadonlyMap<string, KeyEntry>> {
    this.fetches++;
    const signal = AbortSignal.any([this.#closed.signal, AbortSignal.timeout(this.#tuning.timeoutMs)]);
    const response = await fetch(this.#url, { signal, headers: { accept: 'application/json' } });
    if (!response.ok) {
      await response.body?.cancel();
      throw new Error(`answered ${response.status}`);
    }
    const announced = Number(response.headers.get('content-length') ?? 0);
    if (announced > this.#tuning.maxBytes) {
      await response.body?.cancel();
      throw new Error(`set is larger than ${this.#tuning.maxBytes} bytes`);
    }
    const text = await response.text();
    if (Buffer.byteLength(text) > this.#tuning.maxBytes)
      throw new Error(`set is larger than ${this.#tuning.maxBytes} bytes`);
    const parsed: unknown = JSON.parse(text);
    const keys = (parsed as { keys?: unknown } | null)?.keys;
    if (!Array.isArray(keys)) throw new Error('answer is not a JWK set (no "keys" list)');
    const entries = new Map<string, KeyEntry>();
    for (const json of keys) {
      if (!isJwkJson(json)) continue;
      const entry = new KeyEntry(json);
      try {
        await entry.check();
      } catch (error) {
        this.#log.warn({ keys: this.#where(), kid: entry.kid, reason: messageOf(error) }, 'JWK skipped');
        continue;
      }
      entries.set(entry.kid, entry);
    }
    return entries;
  }

  /** The URL without its query or credentials, for logs. */
  #where(): string {
    try {
      const url = new URL(this.#url);
      return `${url.protocol}//${url.host}${url.pathname}`;
    } catch {
      return 'the configured URL';
    }
  }
}
