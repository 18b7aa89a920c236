/**
 * An unsigned JWT (`alg: none`) of the kind Kafka's unsecured OAUTHBEARER validator accepts: a
 * `sub`, an `iat` and an `exp`, seconds since the epoch. For tests only: anyone can make one.
 */
export function unsecuredToken(subject: string, lifetimeSeconds = 3600, now = Date.now()): string {
  const part = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  const issuedAt = Math.floor(now / 1000);
  return `${part({ alg: 'none' })}.${part({ sub: subject, iat: issuedAt, exp: issuedAt + lifetimeSeconds })}.`;
}
