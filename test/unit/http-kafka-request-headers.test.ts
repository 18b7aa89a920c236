import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import {
  CorrelationHash,
  forwardedHeaders,
  type RequestHead,
} from '../../src/bindings/http-kafka/request-headers.ts';

// The headers a request-reply produce passes on and the correlation id it derives, as Zilla's
// http-kafka binding has them (examples/http.kafka.sync shows both for one request).

function request(method: string, url: string, raw: readonly string[], encrypted = false): RequestHead {
  const headers: Record<string, string> = {};
  for (let i = 0; i < raw.length; i += 2) headers[(raw[i] ?? '').toLowerCase()] = raw[i + 1] ?? '';
  return { method, url, headers, rawHeaders: raw, socket: { encrypted } };
}

const text = (headers: ReturnType<typeof forwardedHeaders>): string[][] =>
  headers.map((h) => [h.key, h.value?.toString('latin1') ?? '']);

const SYNC_PUT = request('PUT', '/items/5cf7a1d5-3772-49ef-86e7-ba6f2c7d7d07', [
  'Host',
  'localhost:7114',
  'User-Agent',
  'curl/7.86.0',
  'Accept',
  '*/*',
  'Idempotency-Key',
  '1',
  'Content-Type',
  'application/json',
  'Content-Length',
  '27',
]);

describe('http-kafka request headers and correlation id', () => {
  it("passes on the request's headers in Zilla's order, pseudo-headers first", () => {
    assert.deepEqual(text(forwardedHeaders(SYNC_PUT)), [
      [':scheme', 'http'],
      [':method', 'PUT'],
      [':path', '/items/5cf7a1d5-3772-49ef-86e7-ba6f2c7d7d07'],
      [':authority', 'localhost:7114'],
      ['user-agent', 'curl/7.86.0'],
      ['accept', '*/*'],
      ['idempotency-key', '1'],
      ['content-type', 'application/json'],
    ]);
  });

  it('leaves out prefer and the connection, adds the default port, keeps repeats and bytes', () => {
    const req = request(
      'POST',
      '/a?b=c',
      ['host', 'example.com', 'Prefer', 'wait=5', 'Connection', 'keep-alive', 'X-A', '1', 'x-a', 'caf\u00e9'],
      true,
    );
    assert.deepEqual(text(forwardedHeaders(req)), [
      [':scheme', 'https'],
      [':method', 'POST'],
      [':path', '/a?b=c'],
      [':authority', 'example.com:443'],
      ['x-a', '1'],
      ['x-a', 'caf\u00e9'],
    ]);
  });

  it('passes If-Match only with a value after its token, and that value', () => {
    const kept = forwardedHeaders(request('PUT', '/', ['If-Match', 'AQID/"v7"']));
    assert.deepEqual(text(kept).at(-1), ['if-match', '"v7"']);
    const dropped = forwardedHeaders(request('PUT', '/', ['If-Match', '"AQID"']));
    assert.equal(
      dropped.some((h) => h.key === 'if-match'),
      false,
    );
  });

  it("derives the correlation id of Zilla's http.kafka.sync example byte for byte", () => {
    const hash = new CorrelationHash('1');
    hash.update('5cf7a1d5-3772-49ef-86e7-ba6f2c7d7d07');
    hash.updateHeaders(forwardedHeaders(SYNC_PUT));
    hash.updateHeaders([{ key: 'zilla:reply-to', value: Buffer.from('items-responses') }]);
    hash.update(Buffer.from('{"greeting":'));
    hash.update(Buffer.from('"Hello, world"}'));
    const id = hash.digest();
    assert.equal(id, '1-b664e68dd5c49716688e3ec1c8c68bb6');
    assert.equal(Buffer.byteLength(id), hash.length);
    assert.throws(() => hash.update('more'), /already derived/);
  });

  it('derives another id for another body, and a sized one for a multi-byte key', () => {
    const id = (body: string): string => {
      const hash = new CorrelationHash('clé');
      hash.update(body);
      assert.equal(Buffer.byteLength(hash.digest()), hash.length);
      return hash.digest();
    };
    assert.notEqual(id('a'), id('b'));
    assert.equal(id('a'), id('a'));
  });
});
