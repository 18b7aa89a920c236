import { strict as assert } from 'node:assert';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createPublicKey } from 'node:crypto';
import pino from 'pino';
import { isRefusal, JwtGuard, type GuardSession, type GuardVerdict } from '../../src/guards/index.ts';
import {
  AUDIENCE,
  hmacToken,
  ISSUER,
  signToken,
  testKey,
  unsignedToken,
  type TestKey,
} from '../support/jwt.ts';

const silent = pino({ level: 'silent' });

function session(verdict: GuardVerdict): GuardSession {
  if (isRefusal(verdict)) assert.fail(`refused: ${verdict.refused}`);
  return verdict;
}

function refused(verdict: GuardVerdict, reason: RegExp): void {
  assert.ok(isRefusal(verdict), 'expected a refusal');
  assert.match(verdict.refused, reason);
}

async function inlineGuard(
  keys: readonly TestKey[],
  options: Record<string, unknown> = {},
): Promise<JwtGuard> {
  const guard = new JwtGuard(
    'jwt0',
    { issuer: ISSUER, audience: AUDIENCE, keys: keys.map((k) => k.jwk), ...options },
    silent,
  );
  await guard.start();
  return guard;
}

describe('jwt guard', () => {
  let rsa: TestKey;
  let ec: TestKey;
  before(async () => {
    rsa = await testKey('example', 'RS256');
    ec = await testKey('example_ec', 'ES256');
  });

  it('verifies a token and reads identity, scopes and expiry from it', async () => {
    const guard = await inlineGuard([rsa, ec]);
    const token = await signToken(rsa, { sub: 'alice', scope: 'proxy:stream read' }, { expiresIn: 60 });
    const s = session(await guard.verify(token));
    assert.equal(s.guard, 'jwt0');
    assert.equal(s.identity, 'alice');
    assert.deepEqual([...s.scopes].sort(), ['proxy:stream', 'read']);
    assert.ok(s.expiresAt !== undefined && Math.abs(s.expiresAt - (Date.now() + 60_000)) < 2_000);
    assert.equal(s.challengeAt, undefined);
    const es = session(await guard.verify(await signToken(ec, { sub: 'bob' })));
    assert.equal(es.identity, 'bob');
  });

  it('takes scopes from scp, another roles claim, identity and attributes from the claims it is told', async () => {
    const guard = await inlineGuard([rsa], {
      identity: 'email',
      attributes: { tenant: 'org.tenant', level: 'lvl' },
      challenge: 10,
    });
    const token = await signToken(rsa, {
      email: 'a@example.com',
      scp: ['x', 'y'],
      org: { tenant: 't1' },
      lvl: 3,
    });
    const s = session(await guard.verify(token));
    assert.equal(s.identity, 'a@example.com');
    assert.deepEqual([...s.scopes].sort(), ['x', 'y']);
    assert.deepEqual(s.attributes, { tenant: 't1', level: '3' });
    assert.ok(s.expiresAt !== undefined && s.challengeAt === s.expiresAt - 10_000);
    const roles = await inlineGuard([rsa], { roles: 'groups' });
    const r = session(await roles.verify(await signToken(rsa, { groups: 'admin ops', scope: 'ignored' })));
    assert.deepEqual([...r.scopes].sort(), ['admin', 'ops']);
  });

  it('refuses alg none', async () => {
    const guard = await inlineGuard([rsa]);
    const now = Math.floor(Date.now() / 1000);
    refused(
      await guard.verify(unsignedToken({ iss: ISSUER, aud: AUDIENCE, sub: 'x', exp: now + 60 })),
      /not signed/,
    );
  });

  it('refuses an HS256 token whose secret is the RSA public key (algorithm confusion)', async () => {
    const guard = await inlineGuard([rsa]);
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: ISSUER, aud: AUDIENCE, sub: 'x', exp: now + 60 };
    const pem = createPublicKey({ key: rsa.jwk, format: 'jwk' })
      .export({ type: 'spki', format: 'pem' })
      .toString();
    refused(await guard.verify(hmacToken(claims, pem)), /HS256 is not allowed with key example \(RSA\)/);
    refused(await guard.verify(hmacToken(claims, rsa.jwk.n ?? '')), /not allowed/);
    // A key without alg admits its type's algorithms, never HMAC ones.
    const pss = await testKey('example', 'PS256');
    const { alg: _alg, ...noAlg } = pss.jwk;
    const open = new JwtGuard('g', { keys: [noAlg] }, silent);
    await open.start();
    refused(await open.verify(hmacToken(claims, pem)), /not allowed/);
    session(await open.verify(await signToken(pss)));
  });

  it('refuses a token signed by another key under a known kid', async () => {
    const guard = await inlineGuard([rsa]);
    const other = await testKey('example', 'RS256');
    refused(await guard.verify(await signToken(other)), /signature does not verify/);
  });

  it('refuses the wrong issuer and the wrong audience', async () => {
    const guard = await inlineGuard([rsa]);
    refused(await guard.verify(await signToken(rsa, { iss: 'https://evil.example.com' })), /claim iss/);
    refused(await guard.verify(await signToken(rsa, { aud: 'https://other.example.com' })), /claim aud/);
    const missing = await signToken(rsa, { iss: undefined });
    refused(await guard.verify(missing), /claim iss/);
  });

  it('refuses expired and not-yet-valid tokens', async () => {
    const guard = await inlineGuard([rsa]);
    refused(await guard.verify(await signToken(rsa, {}, { expiresIn: -5 })), /expired/);
    const now = Math.floor(Date.now() / 1000);
    refused(await guard.verify(await signToken(rsa, { nbf: now + 60 })), /not valid yet/);
  });

  it('refuses unknown kids, tokens naming no kid, and garbage', async () => {
    const guard = await inlineGuard([rsa]);
    refused(
      await guard.verify(await signToken({ ...rsa, kid: 'other' })),
      /key \(kid\) the guard does not have/,
    );
    refused(await guard.verify(await signToken(rsa, {}, { header: { kid: undefined } })), /names no key/);
    for (const garbage of [
      '',
      'x',
      'a.b.c',
      '...',
      'eyJhbGciOiJSUzI1NiJ9.e30',
      'Bearer x',
      'x'.repeat(20_000),
    ])
      assert.ok(isRefusal(await guard.verify(garbage)), garbage.slice(0, 20));
  });

  it('keeps a verified token until it expires', async () => {
    let now = Date.now();
    const guard = new JwtGuard('g', { keys: [rsa.jwk] }, silent, { now: () => now });
    await guard.start();
    const token = await signToken(rsa, {}, { expiresIn: 30 });
    const first = session(await guard.verify(token));
    assert.equal(await guard.verify(token), first);
    assert.equal(guard.cachedTokens, 1);
    now += 31_000;
    refused(await guard.verify(token), /expired/);
    assert.equal(guard.cachedTokens, 0);
  });

  it('bounds the tokens it keeps', async () => {
    const guard = new JwtGuard('g', { keys: [rsa.jwk] }, silent, { maxCachedTokens: 3 });
    await guard.start();
    for (let i = 0; i < 5; i++) session(await guard.verify(await signToken(rsa, { sub: `u${i}` })));
    assert.equal(guard.cachedTokens, 3);
  });

  it('reads keys written in standard base64, as Zilla examples write them', async () => {
    const n = Buffer.from(rsa.jwk.n ?? '', 'base64url').toString('base64');
    assert.ok(
      n.includes('+') || n.includes('/') || n.endsWith('='),
      'the modulus has a character base64url spells differently',
    );
    const guard = new JwtGuard('g', { keys: [{ ...rsa.jwk, n }] }, silent);
    await guard.start();
    session(await guard.verify(await signToken(rsa)));
  });

  it('fails to start on a key that cannot be used', async () => {
    const guard = new JwtGuard('g', { keys: [{ kty: 'RSA', kid: 'k', alg: 'RS256', n: 'AQAB' }] }, silent);
    await assert.rejects(guard.start(), /key k: cannot be used for RS256/);
    const misfit = new JwtGuard('g', { keys: [{ ...rsa.jwk, alg: 'HS256' }] }, silent);
    await assert.rejects(misfit.start(), /no algorithm fits key type RSA/);
  });
});

describe('jwt guard with a JWK set URL', () => {
  let server: Server;
  let url: string;
  let keys: TestKey[] = [];
  let failures = 0;
  let requests = 0;
  before(async () => {
    server = createServer((req, res) => {
      requests++;
      if (failures > 0) {
        failures--;
        res.writeHead(503).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: keys.map((k) => k.jwk) }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const remote = (tuning = {}): JwtGuard =>
    new JwtGuard('g', { keys: url }, silent, { retryDelayMs: 10, minRefreshMs: 0, ...tuning });

  it('fetches the set and verifies with it', async () => {
    keys = [await testKey('k1')];
    requests = 0;
    const guard = remote();
    await guard.start();
    const [first] = keys;
    assert.ok(first !== undefined);
    session(await guard.verify(await signToken(first)));
    assert.equal(requests, 1);
    guard.close();
  });

  it('fetches again on an unknown kid (a rotated key), at most once per minRefreshMs', async () => {
    const k1 = await testKey('k1');
    keys = [k1];
    requests = 0;
    const guard = remote({ minRefreshMs: 60_000 });
    session(await guard.verify(await signToken(k1)));
    assert.equal(requests, 1);
    // Within minRefreshMs of the last fetch an unknown kid fetches nothing.
    const k2 = await testKey('k2');
    keys = [k1, k2];
    refused(await guard.verify(await signToken(k2)), /does not have/);
    assert.equal(requests, 1);
    guard.close();

    const eager = remote({ minRefreshMs: 0 });
    keys = [k1];
    requests = 0;
    session(await eager.verify(await signToken(k1)));
    keys = [k1, k2];
    session(await eager.verify(await signToken(k2)));
    assert.equal(requests, 2);
    refused(await eager.verify(await signToken(await testKey('k3'))), /does not have/);
    assert.equal(requests, 3);
    eager.close();
  });

  it('retries a failing fetch a bounded number of times', async () => {
    const k1 = await testKey('k1');
    keys = [k1];
    failures = 2;
    requests = 0;
    const guard = remote({ attempts: 3 });
    session(await guard.verify(await signToken(k1)));
    assert.equal(requests, 3);
    guard.close();

    failures = 100;
    requests = 0;
    const down = remote({ attempts: 3 });
    refused(await down.verify(await signToken(k1)), /does not have/);
    assert.equal(requests, 3, 'three tries, then it gives up');
    failures = 0;
    down.close();
  });

  it('keeps the keys it holds when a refresh fails', async () => {
    const k1 = await testKey('k1');
    keys = [k1];
    requests = 0;
    const guard = remote({ attempts: 2 });
    const token = await signToken(k1);
    session(await guard.verify(token));
    failures = 2;
    refused(await guard.verify(await signToken(await testKey('k9'))), /does not have/);
    session(await guard.verify(await signToken(k1, { sub: 'again' })));
    assert.equal(requests, 3);
    guard.close();
  });
});
