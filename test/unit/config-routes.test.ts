import { strict as assert } from 'node:assert';
import { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { ConnectionConditionMatcher } from '../../src/bindings/connection-conditions.ts';
import { HeaderConditionMatcher, type RequestHead } from '../../src/bindings/http/header-conditions.ts';
import { topicRoutes } from '../../src/bindings/kafka/topic-conditions.ts';
import type { ConnectionInfo } from '../../src/bindings/north.ts';
import { PathConditionMatcher, pathRoutes } from '../../src/bindings/path-conditions.ts';
import type { BindingConfig } from '../../src/config/index.ts';
import { matchPath, matchTopic, NO_PARAMS, RouteTable } from '../../src/config/routes.ts';

function binding(routes: BindingConfig['routes'], exit?: string): BindingConfig {
  const config: BindingConfig = { name: 'b', type: 'kafka', kind: 'cache_client', options: {}, routes };
  if (exit !== undefined) config.exit = exit;
  return config;
}

function connection(fields: Partial<ConnectionInfo>): ConnectionInfo {
  return { localPort: 7114, remoteAddress: '127.0.0.1', remotePort: 50000, ...fields };
}

const resolveExit = (config: BindingConfig, topic: string): string | undefined =>
  topicRoutes(config).exitFor(topic);

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

  it('matches no path whose parameter does not percent-decode, so two spellings never share a value', () => {
    assert.deepEqual(matchPath('/items/{id}', '/items/%25zz'), { id: '%zz' });
    for (const path of ['/items/%zz', '/items/%', '/items/%C0%AF', '/items/%ED%A0%80', '/items/%E9'])
      assert.equal(matchPath('/items/{id}', path), undefined, path);
    assert.deepEqual(matchPath('/items/{id}', '/items/%C3%A9'), { id: '\u00e9' });
  });

  it('takes as much as it can in each parameter, as a backtracking RegExp would', () => {
    assert.deepEqual(matchPath('/{a}-{b}', '/x-y-z'), { a: 'x-y', b: 'z' });
    assert.deepEqual(matchPath('/{a}{b}', '/xyz'), { a: 'xy', b: 'z' });
    assert.deepEqual(matchPath('/files/*/{name}.json', '/files/a/b/c.d.json'), { name: 'c.d' });
    assert.equal(matchPath('/{a}-{b}', '/x-'), undefined);
  });

  it('lets a parameter span segments, as Zilla does', () => {
    assert.deepEqual(matchPath('/items/{id}', '/items/42/more'), { id: '42/more' });
    assert.deepEqual(matchPath('/{path}', '/a/b/index.html'), { path: 'a/b/index.html' });
    assert.deepEqual(matchPath('/{a}/{b}', '/x/y/z'), { a: 'x/y', b: 'z' });
    assert.equal(matchPath('/items/{id}', '/items/'), undefined);
    assert.equal(matchPath('/items', '/items/42'), undefined);
    assert.deepEqual(matchPath('/items*', '/items/42/more'), {});
  });

  it('captures only from the path at hand when one template matches path after path', () => {
    const template = '/{a}-{b}/{c}';
    assert.deepEqual(matchPath(template, '/long-first/segment'), { a: 'long', b: 'first', c: 'segment' });
    assert.equal(matchPath(template, '/no-match'), undefined);
    assert.deepEqual(matchPath(template, '/x-y/z/too-long'), { a: 'x', b: 'y/z', c: 'too-long' });
    assert.deepEqual(matchPath(template, '/x-y/z'), { a: 'x', b: 'y', c: 'z' });
    for (let i = 0; i < 1000; i++)
      assert.deepEqual(matchPath(template, `/${i}-${i + 1}/${i + 2}`), {
        a: String(i),
        b: String(i + 1),
        c: String(i + 2),
      });
  });
});

describe('conditions', () => {
  it('requires every field of a condition to match', () => {
    assert.deepEqual(
      new PathConditionMatcher({ method: 'GET', path: '/items/{id}' }).match({
        method: 'get',
        path: '/items/7',
      }),
      {
        id: '7',
      },
    );
    assert.equal(
      new PathConditionMatcher({ method: 'POST', path: '/items/{id}' }).match({
        method: 'GET',
        path: '/items/7',
      }),
      undefined,
    );
    assert.equal(new ConnectionConditionMatcher({ authority: 'a' }).match(connection({})), undefined);
  });

  it('matches http headers by name, with wildcards', () => {
    const request: RequestHead = {
      headers: { host: 'localhost:7114' },
      method: 'GET',
      url: '/items/7',
      socket: new Socket(),
    };
    assert.deepEqual(
      new HeaderConditionMatcher({ headers: { ':scheme': 'http', ':path': '/items*' } }).match(request),
      {},
    );
    assert.equal(new HeaderConditionMatcher({ headers: { ':scheme': 'https' } }).match(request), undefined);
  });

  it('matches :path as Zilla does: a template a query string may follow unless it ends with *', () => {
    const head = (url: string): RequestHead => ({ headers: {}, method: 'GET', url, socket: new Socket() });
    const path = (pattern: string, url: string) =>
      new HeaderConditionMatcher({ headers: { ':path': pattern } }).match(head(url)) !== undefined;
    assert.ok(path('/events', '/events'));
    assert.ok(path('/events', '/events?access_token=abc'));
    assert.ok(!path('/events', '/events/more'));
    assert.ok(!path('/events', '/eventsx?y'));
    assert.ok(path('/items/{id}', '/items/a/b?x=1'));
    assert.ok(!path('/items/{id}', '/items/'));
    assert.ok(path('/items*', '/items/7?x'));
    // `?` is a character of the path, not a one-character wildcard as in other header globs.
    assert.ok(!path('/item?', '/items'));
  });

  it('matches ports, port ranges and address ranges', () => {
    const port = (spec: number | string | (number | string)[]) =>
      new ConnectionConditionMatcher({ port: spec }).match(connection({ localPort: 7114 }));
    const cidr = (range: string, remoteAddress: string) =>
      new ConnectionConditionMatcher({ cidr: range }).match(connection({ remoteAddress }));
    assert.deepEqual(port(7114), {});
    assert.deepEqual(port([80, '7000-7999']), {});
    assert.equal(port('8000-8999'), undefined);
    assert.deepEqual(cidr('10.0.0.0/8', '10.1.2.3'), {});
    assert.equal(cidr('10.0.0.0/8', '192.168.0.1'), undefined);
    assert.deepEqual(cidr('fd00::/8', 'fd12::1'), {});
    assert.deepEqual(
      new ConnectionConditionMatcher({ authority: '*.example.com' }).match(
        connection({ authority: 'API.example.com' }),
      ),
      {},
    );
  });
});

describe('route tables', () => {
  const routes = binding(
    [
      { when: [{ topic: 'items-*' }], exit: 'items' },
      { when: [{ topic: 'orders' }, { topic: 'items-special' }], exit: 'orders' },
      { when: [{ topic: '*' }], exit: 'everything' },
    ],
    'fallback',
  );

  it('takes the first matching route', () => {
    assert.equal(resolveExit(routes, 'items-special'), 'items');
    assert.equal(resolveExit(routes, 'orders'), 'orders');
    assert.equal(resolveExit(routes, 'payments'), 'everything');
  });

  it('falls back to the binding exit, or to nothing', () => {
    const narrow = binding([{ when: [{ topic: 'items' }], exit: 'items' }], 'fallback');
    assert.equal(resolveExit(narrow, 'orders'), 'fallback');
    assert.equal(topicRoutes(narrow).defaultExit, 'fallback');
    assert.equal(resolveExit(binding([{ when: [{ topic: 'items' }], exit: 'items' }]), 'orders'), undefined);
    assert.equal(resolveExit(binding([], 'only'), 'x'), 'only');
  });

  it('treats a route without conditions as matching everything', () => {
    assert.equal(resolveExit(binding([{ when: [], exit: 'all' }], 'fallback'), 'x'), 'all');
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
    const resolved = pathRoutes(proxy).resolve({ method: 'GET', path: '/items/9' });
    assert.deepEqual(resolved?.params, { id: '9' });
    assert.equal(resolved?.route, proxy.routes[1]);
    assert.deepEqual(topicRoutes(binding([], 'x')).resolve('x'), { exit: 'x', params: {} });
  });
});

describe('route compilation', () => {
  it('compiles each condition once, when the table is built', () => {
    const compiled: unknown[] = [];
    const table = new RouteTable(
      binding([{ when: [{ topic: 'a' }, { topic: 'b' }], exit: 'x' }], 'y'),
      (condition: { topic?: string }) => {
        compiled.push(condition);
        return { match: (topic: string) => (topic === condition.topic ? NO_PARAMS : undefined) };
      },
    );
    assert.deepEqual(compiled, [{ topic: 'a' }, { topic: 'b' }]);
    assert.equal(table.exitFor('b'), 'x');
    assert.equal(table.exitFor('c'), 'y');
    assert.equal(compiled.length, 2);
  });

  it('refuses a cidr prefix longer than its family allows, naming the binding and condition', () => {
    const tcp = binding([{ when: [{ port: 1 }, { cidr: '10.0.0.0/33' }], exit: 'x' }]);
    assert.throws(
      () => new RouteTable(tcp, (condition) => new ConnectionConditionMatcher(condition)),
      /^Error: binding b: routes\[0\]\.when\[1\]: cidr 10\.0\.0\.0\/33: an IPv4 prefix has at most 32 bits$/,
    );
  });

  it('reads the pseudo-headers of a request from what it was sent with', () => {
    const matcher = new HeaderConditionMatcher({
      headers: { ':authority': 'h2.example:*', ':method': 'POST', 'X-Tenant': 'a*' },
    });
    const request: RequestHead = {
      headers: { ':authority': 'h2.example:443', host: 'other', 'x-tenant': ['ab', 'c'] },
      method: 'POST',
      url: '/',
      socket: new Socket(),
    };
    assert.deepEqual(matcher.match(request), {});
    assert.equal(matcher.match({ ...request, method: 'GET' }), undefined);
    assert.equal(new HeaderConditionMatcher({ headers: { 'x-missing': '*' } }).match(request), undefined);
  });
});
