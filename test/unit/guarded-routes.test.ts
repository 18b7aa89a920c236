import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import type { RecordHeader } from '../../src/bindings/kafka/client/protocol/records.ts';
import { closeFakeTopics, FakeTopic } from '../support/fake-cache.ts';
import { send, startGuardedGateway, stream, type GuardedGateway } from '../support/guarded-gateway.ts';
import { AUDIENCE, ISSUER, signToken, testKey, type TestKey } from '../support/jwt.ts';
import { until } from '../support/until.ts';

// Guarded routes through the bindings `kgate start` builds (tcp, http, sse, sse-kafka, http-kafka
// and a jwt guard), over a fake cache: who gets in where, with which answer, and which messages
// each identity sees and stamps.

after(closeFakeTopics);

function config(key: TestKey, challenge = 1): (port: number) => string {
  return (port) => `
name: guarded
guards:
  jwt0:
    type: jwt
    options:
      issuer: ${ISSUER}
      audience: ${AUDIENCE}
      keys: [${JSON.stringify(key.jwk)}]
      challenge: ${challenge}
      attributes:
        tenant: org.tenant
bindings:
  tcp:
    type: tcp
    kind: server
    options: { host: 127.0.0.1, port: ${port} }
    exit: http
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
      - when: [ { headers: { ":path": "/events*" } } ]
        exit: sse
      - when: [ { headers: { ":path": "/feed" } } ]
        guarded: { jwt0: [ vip ] }
        exit: vip
      - when: [ { headers: { ":path": "/admin*" } } ]
        guarded: { jwt0: [ admin ] }
        exit: api
      - when: [ { headers: { ":path": "/feed" } }, { headers: { ":path": "/items*" } } ]
        exit: api
  sse:
    type: sse
    kind: server
    routes:
      - guarded: { jwt0: [ "proxy:stream" ] }
        exit: sse_kafka
  sse_kafka:
    type: sse-kafka
    kind: proxy
    routes:
      - when: [ { path: /events } ]
        exit: cache
        with:
          topic: events
          filters: [ { key: "\${guarded['jwt0'].identity}" } ]
      - when: [ { path: /events/own } ]
        exit: cache
        with:
          topic: "user-\${guarded['jwt0'].identity}"
  vip:
    type: http-kafka
    kind: proxy
    routes:
      - when: [ { method: GET, path: /feed } ]
        exit: cache
        with: { capability: fetch, topic: vip-feed }
  api:
    type: http-kafka
    kind: proxy
    routes:
      - when: [ { method: GET, path: /feed } ]
        exit: cache
        with: { capability: fetch, topic: feed }
      - when: [ { method: GET, path: /items } ]
        guarded: { jwt0: [ read ] }
        exit: cache
        with:
          capability: fetch
          topic: items
          filters: [ { headers: { owner: "\${guarded['jwt0'].identity}" } } ]
      - when: [ { method: POST, path: /items } ]
        guarded: { jwt0: [ write ] }
        exit: cache
        with:
          capability: produce
          topic: items
          key: "\${guarded['jwt0'].identity}"
          overrides:
            owner: "\${guarded['jwt0'].identity}"
            tenant: "\${guarded['jwt0'].attributes.tenant}"
      - when: [ { method: GET, path: /admin/stats } ]
        exit: cache
        with: { capability: fetch, topic: feed }
  cache:
    type: kafka
    kind: cache_client
    exit: cache_server
  cache_server:
    type: kafka
    kind: cache_server
    exit: kafka
  kafka:
    type: kafka
    kind: client
`;
}

describe('guarded routes', () => {
  let key: TestKey;
  let gateway: GuardedGateway;
  const events = new FakeTopic('events');
  const alice = new FakeTopic('user-alice');
  const bob = new FakeTopic('user-bob');
  const feed = new FakeTopic('feed');
  const vipFeed = new FakeTopic('vip-feed');
  const items = new FakeTopic('items');
  const token = (claims: Record<string, unknown>, expiresIn: number | null = 3600): Promise<string> =>
    signToken(key, claims, { expiresIn });

  before(async () => {
    key = await testKey();
    events.put(0, 'alice', 'a1');
    events.put(0, 'bob', 'b1');
    events.put(0, 'alice', 'a2');
    alice.put(0, 'k', 'for alice');
    bob.put(0, 'k', 'for bob');
    feed.put(0, 'k', 'public');
    vipFeed.put(0, 'k', 'vip');
    items.put(0, 'x', 'of alice', { headers: [{ name: 'owner', value: Buffer.from('alice') }] });
    items.put(0, 'y', 'of bob', { headers: [{ name: 'owner', value: Buffer.from('bob') }] });
    gateway = await startGuardedGateway(config(key), [events, alice, bob, feed, vipFeed, items]);
  });
  after(() => gateway.stop());

  it('answers a guarded route 401 without credentials and with ones that do not verify, 403 without the scope', async () => {
    const missing = await send(gateway.port, 'GET', '/admin/stats');
    assert.equal(missing.status, 401);
    assert.equal(missing.headers['www-authenticate'], 'Bearer realm="jwt0"');
    const forged = await send(gateway.port, 'GET', '/admin/stats', { authorization: 'Bearer not.a.token' });
    assert.equal(forged.status, 401);
    assert.equal(forged.headers['www-authenticate'], 'Bearer realm="jwt0", error="invalid_token"');
    const expired = await send(gateway.port, 'GET', '/admin/stats', {
      authorization: `Bearer ${await token({ scope: 'admin' }, -10)}`,
    });
    assert.equal(expired.status, 401);
    const noScope = await send(gateway.port, 'GET', '/admin/stats', {
      authorization: `Bearer ${await token({ scope: 'read' })}`,
    });
    assert.equal(noScope.status, 403);
    assert.equal(noScope.headers['www-authenticate'], 'Bearer realm="jwt0", error="insufficient_scope"');
    const admin = await send(gateway.port, 'GET', '/admin/stats', {
      authorization: `Bearer ${await token({ scope: 'admin' })}`,
    });
    assert.equal(admin.status, 200);
    assert.equal(admin.body, 'public');
  });

  it('takes credentials from the query and from a cookie as well as the header', async () => {
    const t = await token({ scope: 'admin' });
    assert.equal((await send(gateway.port, 'GET', `/admin/stats?access_token=${t}`)).status, 200);
    assert.equal(
      (await send(gateway.port, 'GET', '/admin/stats', { cookie: `a=b; access_token=${t}` })).status,
      200,
    );
    assert.equal(
      (await send(gateway.port, 'GET', '/admin/stats', { authorization: `bearer ${t}` })).status,
      200,
    );
  });

  it('passes a request its credentials do not open on to the next route, as Zilla does', async () => {
    assert.equal((await send(gateway.port, 'GET', '/feed')).body, 'public');
    const vip = await send(gateway.port, 'GET', '/feed', {
      authorization: `Bearer ${await token({ scope: 'vip' })}`,
    });
    assert.equal(vip.body, 'vip');
  });

  it('answers a guarded route of an http-kafka proxy 401 and 403 too', async () => {
    assert.equal((await send(gateway.port, 'GET', '/items')).status, 401);
    const writer = await send(gateway.port, 'GET', '/items', {
      authorization: `Bearer ${await token({ scope: 'write' })}`,
    });
    assert.equal(writer.status, 403);
  });

  it('answers an event stream that the sse route does not admit 404, as Zilla does', async () => {
    const none = await stream(gateway.port, '/events');
    assert.equal(none.status, 404);
    none.close();
    const unscoped = await stream(gateway.port, `/events?access_token=${await token({ scope: 'read' })}`);
    assert.equal(unscoped.status, 404);
    unscoped.close();
  });

  it('streams each identity only its own messages, by key filter and by topic', async () => {
    const a = await stream(
      gateway.port,
      `/events?access_token=${await token({ sub: 'alice', scope: 'proxy:stream' })}`,
    );
    const b = await stream(
      gateway.port,
      `/events?access_token=${await token({ sub: 'bob', scope: 'proxy:stream' })}`,
    );
    assert.equal(a.status, 200);
    await until('alice has her two events', () => a.events.length >= 2);
    await until('bob has his event', () => b.events.length >= 1);
    events.put(0, 'bob', 'b2');
    events.put(0, 'alice', 'a3');
    await until('alice has her live event', () => a.events.length >= 3);
    await until('bob has his live event', () => b.events.length >= 2);
    assert.deepEqual(
      a.events.map((e) => e.data),
      ['a1', 'a2', 'a3'],
    );
    assert.deepEqual(
      b.events.map((e) => e.data),
      ['b1', 'b2'],
    );
    a.close();
    b.close();
    const own = await stream(
      gateway.port,
      `/events/own?access_token=${await token({ sub: 'bob', scope: 'proxy:stream' })}`,
    );
    await until('bob has his own topic', () => own.events.length >= 1);
    assert.deepEqual(
      own.events.map((e) => e.data),
      ['for bob'],
    );
    own.close();
    const odd = await stream(
      gateway.port,
      `/events/own?access_token=${await token({ sub: 'a/b', scope: 'proxy:stream' })}`,
    );
    assert.equal(odd.status, 404, 'an identity that makes no legal topic name');
    odd.close();
    const nobody = await stream(
      gateway.port,
      `/events/own?access_token=${await token({ sub: undefined, scope: 'proxy:stream' })}`,
    );
    assert.equal(nobody.status, 403, 'a token without the identity claim');
    nobody.close();
  });

  it('fetches by identity and stamps produced records with it', async () => {
    const reader = await send(gateway.port, 'GET', '/items', {
      authorization: `Bearer ${await token({ sub: 'bob', scope: 'read' })}`,
    });
    assert.equal(reader.status, 200);
    assert.equal(reader.body, 'of bob');
    const posted = await send(
      gateway.port,
      'POST',
      '/items',
      {
        authorization: `Bearer ${await token({ sub: 'carol', scope: 'write', org: { tenant: 't9' } })}`,
        'content-type': 'text/plain',
      },
      'hello',
    );
    assert.equal(posted.status, 204, posted.body);
    const produced = gateway.cache.produced.at(-1);
    assert.ok(produced !== undefined);
    assert.equal(produced.topic, 'items');
    const [record] = produced.records;
    assert.ok(record !== undefined);
    assert.equal(String(record.key), 'carol');
    // Request-reply and produce headers are written as a list, in the order they are produced.
    assert.ok(Array.isArray(record.headers));
    const list: readonly RecordHeader[] = record.headers;
    const headers = Object.fromEntries(list.map((h) => [h.key, h.value?.toString()]));
    assert.equal(headers['owner'], 'carol');
    assert.equal(headers['tenant'], 't9');
  });

  it('challenges an event stream before its token expires, and ends it when it does', async () => {
    const t = await token({ sub: 'alice', scope: 'proxy:stream' }, 3);
    const s = await stream(gateway.port, `/events?access_token=${t}`);
    assert.equal(s.status, 200);
    await until('the challenge event', () => s.events.some((e) => e.type === 'challenge'), 5_000);
    const challenge = s.events.find((e) => e.type === 'challenge');
    assert.deepEqual(JSON.parse(challenge?.data ?? ''), {
      method: 'POST',
      headers: { 'content-type': 'application/x-challenge-response' },
    });
    const started = Date.now();
    await s.ended;
    assert.ok(Date.now() - started < 4_000, 'the stream ended at expiry');
  });

  it('writes no token to its logs', async () => {
    const secret = await token({ sub: 'alice', scope: 'none' });
    await send(gateway.port, 'GET', `/nowhere?access_token=${secret}`);
    await send(gateway.port, 'GET', `/admin/stats?access_token=${secret}`);
    await send(gateway.port, 'GET', '/items', { authorization: `Bearer ${secret}x` });
    const s = await stream(gateway.port, `/events?access_token=${secret}`);
    s.close();
    const signature = secret.split('.')[2] ?? '';
    assert.ok(gateway.logs.length > 0);
    for (const line of gateway.logs) {
      assert.ok(!line.includes(signature), `a log line carries the token: ${line.slice(0, 200)}`);
      assert.ok(!line.includes(secret.split('.')[1] ?? ''), 'a log line carries the claims');
    }
  });
});
