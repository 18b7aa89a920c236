import { strict as assert } from 'node:assert';
import { Agent, request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { closeFakeTopics, FakeTopic } from '../support/fake-cache.ts';
import { fuzzParameters, hostileText } from '../support/fuzz.ts';
import { startGuardedGateway, type GuardedGateway } from '../support/guarded-gateway.ts';
import {
  AUDIENCE,
  hmacToken,
  ISSUER,
  signToken,
  testKey,
  unsignedToken,
  type TestKey,
} from '../support/jwt.ts';

// Malformed, truncated, oversized and forged tokens, in every place the http server looks for
// credentials, against a guarded route: none gets a 2xx, none crashes the gateway, and memory
// stays flat. A long run: KGATE_FUZZ_RUNS=100000 node --test test/unit/fuzz-guard.test.ts

after(closeFakeTopics);

const CONFIG = (key: TestKey) => (port: number) => `
guards:
  jwt0:
    type: jwt
    options:
      issuer: ${ISSUER}
      audience: ${AUDIENCE}
      keys: [${JSON.stringify(key.jwk)}]
bindings:
  tcp: { type: tcp, kind: server, options: { host: 127.0.0.1, port: ${port} }, exit: http }
  http:
    type: http
    kind: server
    options:
      authorization:
        jwt0:
          credentials:
            headers: { authorization: "Bearer {credentials}" }
            query: { access_token: "{credentials}" }
            cookies: { access_token: "{credentials}" }
    routes:
      - when: [ { headers: { ":path": "/secret*" } } ]
        guarded: { jwt0: [ admin ] }
        exit: api
  api:
    type: http-kafka
    kind: proxy
    routes:
      - when: [ { method: GET, path: /secret } ]
        exit: cache
        with: { capability: fetch, topic: secret }
  cache: { type: kafka, kind: cache_client, exit: server }
  server: { type: kafka, kind: cache_server, exit: client }
  client: { type: kafka, kind: client }
`;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function settledHeap(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

const B64 = [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'];
const TOKEN_ALPHABET = [...B64, '.', '.', '=', '+', '/', '%', ' ', '"', '{', '}'];

describe('fuzzing a guarded route with tokens', () => {
  let gateway: GuardedGateway;
  let valid: string;
  let wrongScope: string;
  let forgedKey: string;
  let key: TestKey;
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });

  before(async () => {
    key = await testKey();
    const secret = new FakeTopic('secret');
    secret.put(0, 'k', 'the secret');
    gateway = await startGuardedGateway(CONFIG(key), [secret], { keepLogs: false });
    valid = await signToken(key, { scope: 'admin' });
    wrongScope = await signToken(key, { scope: 'read' });
    forgedKey = await signToken(await testKey(), { scope: 'admin' });
  });
  after(async () => {
    agent.destroy();
    await gateway.stop();
  });

  function get(path: string, headers: Record<string, string>): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: gateway.port, path, headers, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });
  }

  /**
   * Whether `token` is the valid token spelled another way: the last character of a base64url part
   * carries bits that decode to nothing, so changing only those leaves the same bytes, and the
   * same (valid) token.
   */
  const isValid = (token: string): boolean => {
    const parts = token.split('.');
    const mine = valid.split('.');
    return (
      parts.length === 3 &&
      parts.every((p, i) => Buffer.from(p, 'base64url').equals(Buffer.from(mine[i] ?? '', 'base64url')))
    );
  };

  /** Tokens a guard must refuse: each derived from a valid one, or made up. */
  const tokens = (): fc.Arbitrary<string> => {
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: ISSUER, aud: AUDIENCE, sub: 'x', scope: 'admin', exp: now + 3600 };
    return fc
      .oneof(
        hostileText(TOKEN_ALPHABET, 300),
        // truncated anywhere
        fc.nat().map((n) => valid.slice(0, n % valid.length)),
        // one character of the signature or claims changed
        fc
          .tuple(fc.nat(), fc.constantFrom(...B64))
          .map(([n, c]) => {
            const at = valid.indexOf('.') + 1 + (n % (valid.length - valid.indexOf('.') - 1));
            const swapped = valid[at] === c ? (c === 'A' ? 'B' : 'A') : c;
            return valid.slice(0, at) + swapped + valid.slice(at + 1);
          })
          .filter((t) => t !== valid && !t.slice(0, t.lastIndexOf('.')).includes('..')),
        // forged: unsigned, HMAC with the public key, another key, a valid one lacking the scope
        fc.constant(unsignedToken(claims)),
        fc.constant(hmacToken(claims, JSON.stringify(key.jwk))),
        fc.constant(forgedKey),
        fc.constant(wrongScope),
        // oversized, and parts glued in odd orders
        fc.nat({ max: 40_000 }).map((n) => 'a'.repeat(n)),
        fc.shuffledSubarray(valid.split('.'), { minLength: 1 }).map((parts) => parts.join('.')),
      )
      .filter((token) => !isValid(token));
  };

  it('answers no forged, broken or unscoped token with a 2xx, and keeps memory flat', async () => {
    assert.equal(
      await get('/secret', { authorization: `Bearer ${valid}` }),
      200,
      'the valid token opens the route',
    );
    const statuses = new Map<number, number>();
    const heapBefore = settledHeap();
    await fc.assert(
      fc.asyncProperty(
        tokens(),
        fc.constantFrom('header', 'query', 'cookie', 'scheme'),
        async (token, where) => {
          let status: number;
          const safe = encodeURIComponent(token);
          if (where === 'header')
            status = await get('/secret', { authorization: `Bearer ${token.replace(/[^\x20-\x7e]/g, '')}` });
          else if (where === 'scheme')
            status = await get('/secret', { authorization: token.replace(/[^\x20-\x7e]/g, '') });
          else if (where === 'query') status = await get(`/secret?access_token=${safe}`, {});
          else status = await get('/secret', { cookie: `access_token=${safe}` });
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
          return status >= 400 && status < 500;
        },
      ),
      fuzzParameters(300),
    );
    const grew = settledHeap() - heapBefore;
    // Only verified tokens are kept; refused ones leave nothing behind.
    assert.ok(grew < 64 * 1024 * 1024, `heap grew by ${grew} bytes`);
    assert.equal(await get('/secret', { authorization: `Bearer ${valid}` }), 200, 'still serving');
    process.stdout.write(
      `# statuses: ${JSON.stringify([...statuses])}, heap +${Math.round(grew / 1024)} KiB\n`,
    );
  });
});
