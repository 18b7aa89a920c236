import { strict as assert } from 'node:assert';
import { describe, it, mock } from 'node:test';
import { ReplyBook, replyOf, type Reply } from '../../src/bindings/http-kafka/replies.ts';
import type { CacheMessage } from '../../src/bindings/kafka/cache_client/index.ts';

const reply = (text: string): Reply => ({ status: 200, headers: [], body: Buffer.from(text) });

const CID = 'zilla:correlation-id';

function message(value: string | null, headers: [string, string][]): CacheMessage {
  return {
    partition: 0,
    offset: 0n,
    timestamp: 0,
    key: null,
    value: value === null ? null : Buffer.from(value),
    headers: headers.map(([name, v]) => ({ name: Buffer.from(name), value: Buffer.from(v) })),
    filters: 0,
    progress: new Map(),
  };
}

describe('http-kafka reply bookkeeping', () => {
  it('waits without a deadline when given none, as a synchronous request does', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const book = new ReplyBook();
      let settled = false;
      const waited = book.wait('sync', Infinity).then((r) => {
        settled = true;
        return r;
      });
      // Past the 60 s kgate once gave up at, and far beyond.
      mock.timers.tick(24 * 3600_000);
      await Promise.resolve();
      assert.equal(settled, false);
      book.deliver('sync', reply('late'));
      assert.equal((await waited)?.body.toString(), 'late');
    } finally {
      mock.timers.reset();
    }
  });

  it('wakes every waiter of an id, and only of that id', async () => {
    const book = new ReplyBook();
    const a1 = book.wait('a', 5_000);
    const a2 = book.wait('a', 5_000);
    const b = book.wait('b', 50);
    assert.equal(book.deliver('a', reply('for a')), true);
    assert.equal((await a1)?.body.toString(), 'for a');
    assert.equal((await a2)?.body.toString(), 'for a');
    assert.equal(await b, undefined);
    // Nobody expected `a`: the reply went to its waiters and was not kept.
    assert.equal(book.get('a'), undefined);
  });

  it('keeps the reply of an expected id that arrives before anyone waits', async () => {
    const book = new ReplyBook();
    book.expect('c');
    assert.equal(book.knows('c'), true);
    assert.equal(book.deliver('c', reply('early')), true);
    assert.equal(book.pendingCount, 0);
    assert.equal((await book.wait('c', 0))?.body.toString(), 'early');
    assert.equal(book.get('c')?.body.toString(), 'early');
    book.forget('c');
    assert.equal(book.get('c'), undefined);
    assert.equal(book.arrivedBytes, 0);
  });

  it('ignores replies nobody expects or waits for', () => {
    const book = new ReplyBook();
    assert.equal(book.deliver('other-gateway', reply('x')), false);
    assert.equal(book.arrivedCount, 0);
  });

  it('stops waiting on abort', async () => {
    const book = new ReplyBook();
    const abort = new AbortController();
    const waiting = book.wait('d', 60_000, abort.signal);
    abort.abort();
    assert.equal(await waiting, undefined);
    // The aborted waiter is gone: a late reply is not handed to it.
    assert.equal(book.deliver('d', reply('late')), false);
  });

  it('expires pending ids and arrived replies after the TTL', () => {
    let now = 1_000;
    const book = new ReplyBook({ ttlMs: 100, now: () => now });
    book.expect('e');
    book.expect('f');
    book.deliver('f', reply('f'));
    now += 100;
    assert.equal(book.knows('e'), false);
    assert.equal(book.get('f'), undefined);
    assert.equal(book.deliver('e', reply('too late')), false);
    book.expect('g');
    assert.equal(book.pendingCount, 1);
    assert.equal(book.arrivedCount, 0);
  });

  it('evicts the oldest entries past the count and byte bounds', () => {
    const book = new ReplyBook({ maxEntries: 2, maxBytes: 10 });
    for (const id of ['p1', 'p2', 'p3']) book.expect(id);
    assert.equal(book.pendingCount, 2);
    assert.equal(book.knows('p1'), false);
    for (const id of ['r1', 'r2', 'r3']) book.expect(id);
    book.deliver('r2', reply('123456'));
    book.deliver('r3', reply('abcdef'));
    // 12 bytes > 10: the older reply went.
    assert.equal(book.get('r2'), undefined);
    assert.equal(book.get('r3')?.body.toString(), 'abcdef');
    assert.equal(book.arrivedBytes, 6);
  });

  it('turns a reply message into a response', () => {
    assert.deepEqual(replyOf(message('{"ok":true}', [['content-type', 'application/json']]), CID), {
      status: 200,
      contentType: 'application/json',
      headers: [],
      body: Buffer.from('{"ok":true}'),
    });
    assert.deepEqual(replyOf(message(null, [[':status', '404']]), CID), {
      status: 404,
      headers: [],
      body: Buffer.alloc(0),
    });
    assert.equal(replyOf(message('x', [[':status', ' 204 ']]), CID).status, 204);
    assert.equal(replyOf(message('x', [[':status', '599']]), CID).status, 599);
  });

  it('answers every reply header but the correlation id, pseudo-headers, framing and what cannot be written', () => {
    const answered = replyOf(
      message('x', [
        [':status', '201'],
        ['zilla:correlation-id', '1-abc'],
        ['Location', '/items/1'],
        ['x-trace', 'a'],
        ['x-trace', 'b'],
        ['content-length', '99'],
        ['transfer-encoding', 'chunked'],
        ['connection', 'close'],
        ['bad name', 'v'],
        ['x-split', 'a\r\nInjected: 1'],
        ['x-latin1', 'caf\u00e9'],
      ]),
      CID,
    );
    assert.equal(answered.status, 201);
    assert.deepEqual(answered.headers, [
      ['location', '/items/1'],
      ['x-trace', 'a'],
      ['x-trace', 'b'],
      ['x-latin1', Buffer.from('caf\u00e9').toString('latin1')],
    ]);
  });

  it('marks a reply whose :status is not a final status invalid, to be answered 502', () => {
    // A 1xx would go out as an interim response the real one never follows, desynchronising the connection.
    for (const status of [
      '100',
      '101',
      '103',
      '199',
      '700',
      '99',
      'nope',
      '',
      '2OO',
      '200\r\nX: y',
      '+200',
      '0200',
    ]) {
      const reply = replyOf(message('x', [[':status', status]]), CID);
      assert.equal(reply.status, 502, JSON.stringify(status));
      assert.match(
        reply.invalid ?? '',
        /^the reply's :status ".*" is not a final HTTP status \(200 to 599\)$/,
      );
    }
    assert.equal(replyOf(message('x', []), CID).invalid, undefined, 'no :status: 200');
  });
});
