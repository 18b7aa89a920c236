import { saslScramSha } from '@platformatic/kafka';
import { AuthenticationError } from './errors.ts';

export type PasswordMechanism = 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512';
export type SaslMechanism = PasswordMechanism | 'OAUTHBEARER';

export interface PasswordSasl {
  readonly mechanism: PasswordMechanism;
  readonly username: string;
  readonly password: string;
}

/** A bearer token (RFC 7628) the broker validates; kgate sends it as given and never reads it. */
export interface OauthBearerSasl {
  readonly mechanism: 'OAUTHBEARER';
  readonly token: string;
}

export type SaslConfig = PasswordSasl | OauthBearerSasl;

/** Sends one SaslAuthenticate round trip and returns the broker's auth bytes. */
export type SaslExchange = (authBytes: Buffer) => Promise<Buffer>;

export function failedMessage(sasl: SaslConfig): string {
  // A token is a secret and names no user kgate could show without decoding it.
  if (sasl.mechanism === 'OAUTHBEARER') return 'SASL authentication failed with OAUTHBEARER';
  return `SASL authentication failed for user ${sasl.username} with ${sasl.mechanism}`;
}

/**
 * OAUTHBEARER's client first message carries the token. A broker that refuses it answers with a
 * JSON error, to which the client must answer with a lone separator before the broker fails the
 * authentication; its `status` says why, without the token.
 */
async function authenticateBearer(sasl: OauthBearerSasl, exchange: SaslExchange): Promise<void> {
  const answer = await exchange(Buffer.from(`n,,\x01auth=Bearer ${sasl.token}\x01\x01`, 'utf8'));
  if (answer.length === 0) return;
  const status = bearerStatus(answer);
  try {
    await exchange(Buffer.from('\x01', 'utf8'));
  } catch (error) {
    throw new AuthenticationError(`${failedMessage(sasl)}: the broker refused the token (${status})`, {
      cause: error,
    });
  }
  throw new AuthenticationError(`${failedMessage(sasl)}: the broker refused the token (${status})`);
}

function bearerStatus(answer: Buffer): string {
  try {
    const parsed: unknown = JSON.parse(answer.toString('utf8'));
    const status =
      typeof parsed === 'object' && parsed !== null ? (parsed as { status?: unknown }).status : undefined;
    return typeof status === 'string' && /^[\w.-]{1,64}$/.test(status) ? status : 'no status';
  } catch {
    return 'unreadable answer';
  }
}

/**
 * Runs the client side of the mechanism. PLAIN is one round trip; SCRAM (RFC 5802) is two and also
 * checks the server's signature, so a broker that does not know the password cannot impersonate one.
 */
export async function authenticate(sasl: SaslConfig, exchange: SaslExchange): Promise<void> {
  if (sasl.mechanism === 'OAUTHBEARER') {
    await authenticateBearer(sasl, exchange);
    return;
  }
  if (sasl.mechanism === 'PLAIN') {
    await exchange(Buffer.from(`\0${sasl.username}\0${sasl.password}`, 'utf8'));
    return;
  }
  const definition =
    sasl.mechanism === 'SCRAM-SHA-256'
      ? saslScramSha.ScramAlgorithms['SHA-256']
      : saslScramSha.ScramAlgorithms['SHA-512'];
  const nonce = saslScramSha.createNonce();
  const firstBare = `n=${saslScramSha.sanitizeString(sasl.username)},r=${nonce}`;
  const serverFirstBytes = await exchange(Buffer.from(`n,,${firstBare}`, 'utf8'));
  const serverFirst = parseScram(serverFirstBytes, sasl);
  const serverNonce = serverFirst.get('r');
  const salt = serverFirst.get('s');
  const iterations = Number(serverFirst.get('i'));
  if (serverNonce === undefined || salt === undefined || !serverNonce.startsWith(nonce)) {
    throw new AuthenticationError(`${failedMessage(sasl)}: malformed server-first message`);
  }
  if (!Number.isInteger(iterations) || iterations < definition.minIterations) {
    throw new AuthenticationError(`${failedMessage(sasl)}: server asked for ${iterations} iterations`);
  }
  const saltedPassword = await saslScramSha.hi(
    definition,
    sasl.password,
    Buffer.from(salt, 'base64'),
    iterations,
  );
  const clientKey = saslScramSha.hmac(definition, saltedPassword, 'Client Key');
  const storedKey = saslScramSha.h(definition, clientKey);
  const finalWithoutProof = `c=${Buffer.from('n,,').toString('base64')},r=${serverNonce}`;
  const authMessage = `${firstBare},${serverFirstBytes.toString('utf8')},${finalWithoutProof}`;
  const proof = saslScramSha.xor(clientKey, saslScramSha.hmac(definition, storedKey, authMessage));
  const serverFinal = parseScram(
    await exchange(Buffer.from(`${finalWithoutProof},p=${proof.toString('base64')}`, 'utf8')),
    sasl,
  );
  const serverError = serverFinal.get('e');
  if (serverError !== undefined) throw new AuthenticationError(`${failedMessage(sasl)}: ${serverError}`);
  const expected = saslScramSha
    .hmac(definition, saslScramSha.hmac(definition, saltedPassword, 'Server Key'), authMessage)
    .toString('base64');
  if (serverFinal.get('v') !== expected) {
    throw new AuthenticationError(`${failedMessage(sasl)}: the broker's SCRAM signature does not match`);
  }
}

function parseScram(bytes: Buffer, sasl: PasswordSasl): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of bytes.toString('utf8').split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new AuthenticationError(`${failedMessage(sasl)}: malformed SCRAM message`);
    out.set(part.slice(0, eq), part.slice(eq + 1));
  }
  return out;
}

export function parseMechanism(value: string): SaslMechanism {
  const upper = value.toUpperCase();
  if (upper === 'PLAIN' || upper === 'SCRAM-SHA-256' || upper === 'SCRAM-SHA-512' || upper === 'OAUTHBEARER')
    return upper;
  throw new Error(`unsupported SASL mechanism ${value} (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER)`);
}
