import { strict as assert } from 'node:assert';
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import {
  applyCors,
  parseCorsPolicy,
  type CorsOutcome,
  type CorsPolicy,
} from '../../src/bindings/http/cors.ts';
import { normalizeAddress, requestUrl } from '../../src/bindings/north.ts';
import { formatComment, formatEvent } from '../../src/bindings/sse/stream.ts';
import { createTcpServerBinding, parsePorts } from '../../src/bindings/tcp/server.ts';
import { Engine } from '../../src/engine/engine.ts';
import { BindingRegistry } from '../../src/engine/registry.ts';

describe('parsePorts', () => {
  it('expands numbers, ranges and lists, without repeats', () => {
    assert.deepEqual(parsePorts(7114), [7114]);
    assert.deepEqual(parsePorts('8080-8082'), [8080, 8081, 8082]);
    assert.deepEqual(parsePorts([7114, '8080-8081', 8080]), [7114, 8080, 8081]);
  });

  it('refuses empty and malformed ranges', () => {
    assert.throws(() => parsePorts('9-8'), { message: 'port range 9-8 is empty' });
    assert.throws(() => parsePorts('http'), /is not a number or a range/);
    assert.throws(() => parsePorts([]), { message: 'no port to listen on' });
  });
});

describe('sse framing', () => {
  it('writes one data line per line of text, whatever the line break', () => {
    assert.equal(
      formatEvent({ id: '7', type: 'update', data: 'a\nb\r\nc\rd' }),
      'id:7\nevent:update\ndata:a\ndata:b\ndata:c\ndata:d\n\n',
    );
    assert.equal(formatEvent({ data: '' }), 'data:\n\n');
    assert.equal(formatComment('one\ntwo'), ': one\n: two\n');
  });

  it('writes fields as Zilla does, with one more space before a value that starts with one', () => {
    assert.equal(formatEvent({ id: '1', data: '{"a":1}' }), 'id:1\ndata:{"a":1}\n\n');
    // A reader drops one space after the colon: without the extra one " x" would arrive as "x".
    assert.equal(formatEvent({ id: ' 2', data: ' x\n  y' }), 'id:  2\ndata:  x\ndata:   y\n\n');
  });

  it('refuses ids and types that would break the framing', () => {
    assert.throws(() => formatEvent({ id: '1\n2', data: 'x' }), TypeError);
    assert.throws(() => formatEvent({ type: 'a\rb', data: 'x' }), TypeError);
  });
});

describe('parseCorsPolicy', () => {
  it('is off without the option', () => {
    assert.equal(parseCorsPolicy(undefined), undefined);
  });

  it('treats absent lists and "*" as anything, and exposes any header by default, as Zilla does', () => {
    const policy = parseCorsPolicy({
      policy: 'cross-origin',
      allow: { origins: ['*'], methods: ['get', 'post'] },
    });
    assert.ok(policy);
    assert.equal(policy.origins, undefined);
    assert.deepEqual(policy.methods, ['GET', 'POST']);
    assert.equal(policy.headers, undefined);
    assert.equal(policy.credentials, false);
    assert.equal(policy.expose, '*');
    // `*` does not count for credentialed requests: then the headers kgate sends are named.
    const credentialed = parseCorsPolicy({
      policy: 'cross-origin',
      allow: { origins: ['https://app.example:443'], credentials: true },
      expose: undefined,
    });
    assert.ok(credentialed !== undefined && credentialed.expose !== '*');
    assert.ok(credentialed.expose.includes('ETag') && credentialed.expose.includes('Location'));
    assert.deepEqual(credentialed.origins, ['https://app.example']);
  });
});

describe('applyCors', () => {
  function request(policy: CorsPolicy, origin: string): { outcome: CorsOutcome; res: ServerResponse } {
    const req = new IncomingMessage(new Socket());
    req.method = 'GET';
    req.headers = { host: 'gateway.example', origin };
    const res = new ServerResponse(req);
    return { outcome: applyCors(policy, req, res), res };
  }

  it('never answers the null origin with credentials, nor any origin when no list names it', () => {
    const listed: CorsPolicy = {
      policy: 'cross-origin',
      origins: ['null', 'https://app.example'],
      credentials: true,
      expose: [],
    };
    const unlisted: CorsPolicy = { policy: 'cross-origin', credentials: true, expose: [] };
    for (const policy of [listed, unlisted]) {
      const { outcome, res } = request(policy, 'null');
      assert.equal(outcome.kind, 'forbidden');
      assert.equal(res.getHeader('access-control-allow-origin'), undefined);
      assert.equal(res.getHeader('access-control-allow-credentials'), undefined);
    }
    assert.equal(request(unlisted, 'https://evil.example').outcome.kind, 'forbidden');
    const allowed = request(listed, 'https://app.example');
    assert.equal(allowed.outcome.kind, 'continue');
    assert.equal(allowed.res.getHeader('access-control-allow-origin'), 'https://app.example');
    assert.equal(allowed.res.getHeader('access-control-allow-credentials'), 'true');
  });

  it('answers any origin, null included, with * when no origins are listed, as Zilla does', () => {
    const open: CorsPolicy = { policy: 'cross-origin', credentials: false, expose: '*' };
    const { outcome, res } = request(open, 'null');
    assert.equal(outcome.kind, 'continue');
    assert.equal(res.getHeader('access-control-allow-origin'), '*');
    assert.equal(res.getHeader('access-control-allow-credentials'), undefined);
    assert.equal(res.getHeader('access-control-expose-headers'), '*');
    assert.equal(res.getHeader('vary'), undefined);
  });
});

describe('applyCors as Zilla answers cross-origin', () => {
  function exchange(
    policy: CorsPolicy,
    method: string,
    headers: Record<string, string>,
  ): { outcome: CorsOutcome; res: ServerResponse } {
    const req = new IncomingMessage(new Socket());
    req.method = method;
    req.headers = { host: 'gateway.example:7114', ...headers };
    const res = new ServerResponse(req);
    return { outcome: applyCors(policy, req, res), res };
  }
  const open = parseCorsPolicy({ policy: 'cross-origin' });
  const listed = parseCorsPolicy({
    policy: 'cross-origin',
    allow: { origins: ['http://app.example'], methods: ['GET', 'POST'], headers: ['Content-Type'] },
    'max-age': 60,
    expose: { headers: ['ETag', 'Content-Type'] },
  });
  assert.ok(open !== undefined && listed !== undefined);

  it('answers a preflight with * for each list left out of allow, without credentials or Vary', () => {
    const { outcome, res } = exchange(open, 'OPTIONS', {
      origin: 'https://app.example',
      'access-control-request-method': 'PUT',
      'access-control-request-headers': 'content-type, idempotency-key',
    });
    assert.equal(outcome.kind, 'answered');
    assert.equal(res.statusCode, 204);
    assert.equal(res.getHeader('access-control-allow-origin'), '*');
    assert.equal(res.getHeader('access-control-allow-methods'), '*');
    assert.equal(res.getHeader('access-control-allow-headers'), '*');
    assert.equal(res.getHeader('access-control-max-age'), undefined);
    assert.equal(res.getHeader('access-control-allow-credentials'), undefined);
    assert.equal(res.getHeader('vary'), undefined);
    assert.equal(res.getHeader('content-length'), undefined);
  });

  it('answers a preflight with what it asked for when allow lists it, and with max-age', () => {
    const { outcome, res } = exchange(listed, 'OPTIONS', {
      origin: 'http://app.example:80',
      'access-control-request-headers': 'Content-Type',
    });
    assert.equal(outcome.kind, 'answered');
    assert.equal(res.getHeader('access-control-allow-origin'), 'http://app.example:80');
    assert.equal(res.getHeader('access-control-allow-methods'), undefined, 'no method asked for');
    assert.equal(res.getHeader('access-control-allow-headers'), 'Content-Type');
    assert.equal(res.getHeader('access-control-max-age'), '60');
    assert.equal(res.getHeader('vary'), 'Origin');
  });

  it('refuses a preflight for a method, a header or an origin not listed', () => {
    const refused: Record<string, string>[] = [
      { origin: 'http://app.example', 'access-control-request-method': 'DELETE' },
      { origin: 'http://app.example', 'access-control-request-headers': 'content-type, x-secret' },
      { origin: 'http://evil.example', 'access-control-request-method': 'GET' },
    ];
    for (const headers of refused) {
      const { outcome, res } = exchange(listed, 'OPTIONS', headers);
      assert.equal(outcome.kind, 'forbidden', JSON.stringify(headers));
      assert.equal(res.headersSent, false);
    }
  });

  it('adds nothing to a same-origin request, and * with expose * to one without an Origin', () => {
    const same = exchange(open, 'GET', { origin: 'http://gateway.example:7114' });
    assert.equal(same.outcome.kind, 'continue');
    assert.equal(same.res.getHeader('access-control-allow-origin'), undefined);
    const none = exchange(open, 'GET', {});
    assert.equal(none.res.getHeader('access-control-allow-origin'), '*');
    assert.equal(none.res.getHeader('access-control-expose-headers'), '*');
  });

  it('names the listed origin and the listed exposed headers, less the safelisted ones', () => {
    const { outcome, res } = exchange(listed, 'GET', { origin: 'http://app.example' });
    assert.equal(outcome.kind, 'continue');
    assert.equal(res.getHeader('access-control-allow-origin'), 'http://app.example');
    assert.equal(res.getHeader('access-control-expose-headers'), 'ETag');
    assert.equal(res.getHeader('vary'), 'Origin');
  });
});

describe('normalizeAddress', () => {
  it('gives IPv4-mapped addresses in IPv4 form', () => {
    assert.equal(normalizeAddress('::ffff:10.1.2.3'), '10.1.2.3');
    assert.equal(normalizeAddress('::1'), '::1');
    assert.equal(normalizeAddress(undefined), '');
  });
});

describe('requestUrl', () => {
  it('reads origin-form targets as paths, // included, and absolute-form targets as URLs', () => {
    assert.equal(requestUrl('/items/1?x=%zz')?.pathname, '/items/1');
    assert.equal(requestUrl('/items/1?x=%zz')?.searchParams.get('x'), '%zz');
    assert.equal(requestUrl('//')?.pathname, '//');
    assert.equal(requestUrl('//evil.example/items')?.pathname, '//evil.example/items');
    assert.equal(requestUrl('http://app.example/items')?.pathname, '/items');
    assert.equal(requestUrl(undefined)?.pathname, '/');
    assert.equal(requestUrl('*'), undefined);
    assert.equal(requestUrl('items'), undefined);
  });
});

describe('tcp server with worker threads', () => {
  it('refuses port 0, which would give every thread a port of its own', async () => {
    const config = {
      file: 'test.yaml',
      name: 'test',
      warnings: [],
      bindings: new Map([
        [
          'tcp',
          { name: 'tcp', type: 'tcp', kind: 'server', options: { host: '127.0.0.1', port: 0 }, routes: [] },
        ],
      ]),
    };
    const registry = new BindingRegistry().register('tcp', 'server', createTcpServerBinding);
    const shared = new Engine(config, registry, {
      logger: pino({ level: 'silent' }),
      stateDir: '/nonexistent',
      sharedListeners: true,
    });
    await assert.rejects(
      shared.start(),
      /binding tcp failed to start: options\.port 0 .* fixed port .*--workers/,
    );
    const alone = new Engine(config, registry, {
      logger: pino({ level: 'silent' }),
      stateDir: '/nonexistent',
    });
    await alone.start();
    await alone.stop(1_000);
  });
});
