import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { BindingConfig } from '../../src/config/index.ts';
import { matchCondition, matchPath, matchTopic, resolveExit, resolveRoute } from '../../src/config/routes.ts';

function binding(routes: BindingConfig['routes'], exit?: string): BindingConfig {
  const config: BindingConfig = { name: 'b', type: 'kafka', kind: 'cache_client', options: {}, routes };
  if (exit !== undefined) config.exit = exit;
  return config;
}

describe('matchTopic', () => {
  it('matches literally without wildcards', () => {
    assert.equal(matchTopic('items', 'items'), true);
    assert.equal(matchTopic('items', 'items2'), false);
    assert.equal(matchTopic('items.v1', 'itemsxv1'), false);
  });

  it('matches * against any run of characters, including none', () => {
    assert.equal(matchTopic('items-*', 'items-requests'), true);
    assert.equal(matchTopic('items-*', 'items-'), true);
    assert.equal(matchTopic('*-responses', 'items-responses'), true);
    assert.equal(matchTopic('items-*', 'orders-requests'), false);
    assert.equal(matchTopic('*', 'anything.at/all'), true);
  });

  it('matches ? against exactly one character', () => {
    assert.equal(matchTopic('items-v?', 'items-v2'), true);
    assert.equal(matchTopic('items-v?', 'items-v'), false);
    assert.equal(matchTopic('items-v?', 'items-v10'), false);
  });

  it('treats regular expression characters literally', () => {
    assert.equal(matchTopic('a+b(c)', 'a+b(c)'), true);
    assert.equal(matchTopic('a+b', 'aab'), false);
  });
});

describe('matchPath', () => {
  it('captures path parameters', () => {
    assert.deepEqual(matchPath('/items/{id}', '/items/42'), { id: '42' });
    assert.deepEqual(matchPath('/items/{id};cid={correlationId}', '/items/42;cid=abc'), {
      id: '42',
      correlationId: 'abc',
    });
    assert.deepEqual(matchPath('/items/{id}', '/items/a%20b'), { id: 'a b' });
  });

  it('matches one segment per parameter', () => {
    assert.equal(matchPath('/items/{id}', '/items/42/more'), undefined);
    assert.equal(matchPath('/items/{id}', '/items/'), undefined);
    assert.equal(matchPath('/items', '/items/42'), undefined);
    assert.deepEqual(matchPath('/items*', '/items/42/more'), {});
  });
});

describe('matchCondition', () => {
  it('requires every field of a condition to match', () => {
    assert.deepEqual(
      matchCondition({ method: 'GET', path: '/items/{id}' }, { method: 'get', path: '/items/7' }),
      {
        id: '7',
      },
    );
    assert.equal(
      matchCondition({ method: 'POST', path: '/items/{id}' }, { method: 'GET', path: '/items/7' }),
      undefined,
    );
    assert.equal(matchCondition({ topic: 'a' }, {}), undefined);
  });

  it('matches http headers by name, with wildcards', () => {
    const facts = { ':scheme': 'http', ':path': '/items/7', ':authority': 'localhost:7114' };
    assert.deepEqual(matchCondition({ headers: { ':scheme': 'http', ':path': '/items*' } }, facts), {});
    assert.equal(matchCondition({ headers: { ':scheme': 'https' } }, facts), undefined);
  });

  it('matches ports, port ranges and address ranges', () => {
    assert.deepEqual(matchCondition({ port: 7114 }, { port: '7114' }), {});
    assert.deepEqual(matchCondition({ port: [80, '7000-7999'] }, { port: '7114' }), {});
    assert.equal(matchCondition({ port: '8000-8999' }, { port: '7114' }), undefined);
    assert.deepEqual(matchCondition({ cidr: '10.0.0.0/8' }, { address: '10.1.2.3' }), {});
    assert.equal(matchCondition({ cidr: '10.0.0.0/8' }, { address: '192.168.0.1' }), undefined);
    assert.deepEqual(matchCondition({ cidr: 'fd00::/8' }, { address: 'fd12::1' }), {});
    assert.deepEqual(matchCondition({ authority: '*.example.com' }, { authority: 'API.example.com' }), {});
  });
});

describe('resolveExit', () => {
  const routes = binding(
    [
      { when: [{ topic: 'items-*' }], exit: 'items' },
      { when: [{ topic: 'orders' }, { topic: 'items-special' }], exit: 'orders' },
      { when: [{ topic: '*' }], exit: 'everything' },
    ],
    'fallback',
  );

  it('takes the first matching route', () => {
    assert.equal(resolveExit(routes, { topic: 'items-special' }), 'items');
    assert.equal(resolveExit(routes, { topic: 'orders' }), 'orders');
    assert.equal(resolveExit(routes, { topic: 'payments' }), 'everything');
  });

  it('falls back to the binding exit, or to nothing', () => {
    const narrow = binding([{ when: [{ topic: 'items' }], exit: 'items' }], 'fallback');
    assert.equal(resolveExit(narrow, { topic: 'orders' }), 'fallback');
    assert.equal(resolveExit(narrow, {}), 'fallback');
    assert.equal(
      resolveExit(binding([{ when: [{ topic: 'items' }], exit: 'items' }]), { topic: 'orders' }),
      undefined,
    );
    assert.equal(resolveExit(binding([], 'only'), { topic: 'x' }), 'only');
  });

  it('treats a route without conditions as matching everything', () => {
    assert.equal(resolveExit(binding([{ when: [], exit: 'all' }], 'fallback'), { topic: 'x' }), 'all');
  });

  it('returns the route and its path parameters', () => {
    const proxy = binding([
      { when: [{ method: 'GET', path: '/items' }], exit: 'cache', with: { capability: 'fetch' } },
      {
        when: [{ method: 'GET', path: '/items/{id}' }],
        exit: 'cache',
        with: { capability: 'fetch', key: '${params.id}' },
      },
    ]);
    const resolved = resolveRoute(proxy, { method: 'GET', path: '/items/9' });
    assert.deepEqual(resolved?.params, { id: '9' });
    assert.equal(resolved?.route, proxy.routes[1]);
    assert.deepEqual(resolveRoute(binding([], 'x'), {}), { exit: 'x', params: {} });
  });
});
