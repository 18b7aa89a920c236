import { createHmac } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

/**
 * Test keys and tokens, made afresh in each test run: an RSA key pair under `kid` "example" (the
 * kid Zilla's jwt examples use) and helpers that sign tokens with it, or forge tokens in the ways
 * a guard must refuse.
 */

export const ISSUER = 'https://auth.example.com';
export const AUDIENCE = 'https://api.example.com';

export interface TestKey {
  readonly kid: string;
  readonly alg: string;
  readonly privateKey: CryptoKey;
  /** The public JWK with `kid` and `alg`, as a guard's `keys` lists it. */
  readonly jwk: JWK & { kty: string; kid: string };
}

export async function testKey(kid = 'example', alg = 'RS256'): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const exported = await exportJWK(publicKey);
  return { kid, alg, privateKey, jwk: { ...exported, kty: exported.kty ?? 'RSA', kid, alg } };
}

export interface TokenClaims extends JWTPayload {
  readonly scope?: string;
}

/** A token signed by `key`, by default from ISSUER for AUDIENCE, subject "example", for an hour. */
export async function signToken(
  key: TestKey,
  claims: TokenClaims = {},
  options: { readonly expiresIn?: number | string | null; readonly header?: Record<string, unknown> } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({ iss: ISSUER, aud: AUDIENCE, sub: 'example', ...claims }).setProtectedHeader({
    alg: key.alg,
    kid: key.kid,
    ...options.header,
  });
  const expiresIn = options.expiresIn === undefined ? 3600 : options.expiresIn;
  if (typeof expiresIn === 'number') jwt.setExpirationTime(now + expiresIn);
  else if (typeof expiresIn === 'string') jwt.setExpirationTime(expiresIn);
  return jwt.sign(key.privateKey);
}

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A token with `alg: none` and no signature. */
export function unsignedToken(claims: JWTPayload, kid = 'example'): string {
  return `${b64({ alg: 'none', kid })}.${b64(claims)}.`;
}

/**
 * A token signed with HMAC-SHA256 using `secret` (say, the text of an RSA public key) as the
 * secret: the algorithm confusion attack on verifiers that take the token's word for the algorithm.
 */
export function hmacToken(claims: JWTPayload, secret: string | Buffer, kid = 'example'): string {
  const input = `${b64({ alg: 'HS256', kid })}.${b64(claims)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}
