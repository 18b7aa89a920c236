import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { Refreshed } from '../../src/bindings/kafka/cache_server/refreshed.ts';

const tick = (ms = 0): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A load the test settles by hand, counting how often it was started. */
function manualLoad<V>(): { load: () => Promise<V>; calls: number; settle(value: V | Error): void } {
  const pending: Array<{ resolve: (v: V) => void; reject: (e: Error) => void }> = [];
  const state = {
    calls: 0,
    load: (): Promise<V> => {
      state.calls++;
      return new Promise<V>((resolve, reject) => pending.push({ resolve, reject }));
    },
    settle(value: V | Error): void {
      const next = pending.shift();
      if (value instanceof Error) next?.reject(value);
      else next?.resolve(value);
    },
  };
  return state;
}

describe('Refreshed', () => {
  it('shares one load among callers asking at the same time', async () => {
    const cache = new Refreshed<number>(60_000);
    const source = manualLoad<number>();
    const answers = Promise.all(Array.from({ length: 50 }, () => cache.get('t', source.load)));
    source.settle(8);
    assert.deepEqual(await answers, Array(50).fill(8));
    assert.equal(source.calls, 1);
    assert.equal(await cache.get('t', source.load), 8);
    assert.equal(source.calls, 1, 'a fresh value is not loaded again');
  });

  it('answers a stale value at once and refreshes it behind, when asked to', async () => {
    const cache = new Refreshed<number>(10);
    const source = manualLoad<number>();
    const first = cache.get('t', source.load);
    source.settle(1);
    assert.equal(await first, 1);
    await tick(20);
    assert.equal(await cache.get('t', source.load, { stale: true }), 1, 'stale, without waiting');
    assert.equal(await cache.get('t', source.load, { stale: true }), 1);
    assert.equal(source.calls, 2, 'one refresh for both');
    source.settle(2);
    await tick();
    assert.equal(await cache.get('t', source.load, { stale: true }), 2);
  });

  it('waits for the reload of an expired value unless told otherwise, and falls back to it on failure', async () => {
    const cache = new Refreshed<string>(10);
    const source = manualLoad<string>();
    const first = cache.get('t', source.load);
    source.settle('old');
    await first;
    await tick(20);
    let settled = false;
    const waiting = cache.get('t', source.load).then((v) => {
      settled = true;
      return v;
    });
    await tick();
    assert.equal(settled, false, 'an expired value is reloaded before it is answered');
    source.settle(new Error('broker away'));
    assert.equal(await waiting, 'old');
  });

  it('waits waitMs for the reload of an expired value, then answers the old one', async () => {
    const cache = new Refreshed<string>(10);
    const source = manualLoad<string>();
    const first = cache.get('t', source.load);
    source.settle('old');
    await first;
    await tick(20);
    const quick = cache.get('t', source.load, { waitMs: 1_000 });
    source.settle('new');
    assert.equal(await quick, 'new', 'an answer within the wait is taken');
    await tick(20);
    const started = Date.now();
    assert.equal(await cache.get('t', source.load, { waitMs: 30 }), 'new', 'the old value past the wait');
    assert.ok(Date.now() - started >= 25);
    // The reload is still under way and has taken longer than the wait: no one waits for it again.
    const again = Date.now();
    assert.equal(await cache.get('t', source.load, { waitMs: 30 }), 'new');
    assert.ok(Date.now() - again < 25);
    assert.equal(source.calls, 3);
    source.settle('newer');
    await tick();
    assert.equal(await cache.get('t', source.load, { waitMs: 30 }), 'newer');
  });

  it('rejects when nothing was ever loaded, and loads again on the next call', async () => {
    const cache = new Refreshed<string>(60_000);
    const source = manualLoad<string>();
    const first = cache.get('t', source.load);
    source.settle(new Error('no such topic'));
    await assert.rejects(first, /no such topic/);
    const second = cache.get('t', source.load);
    source.settle('now');
    assert.equal(await second, 'now');
    assert.equal(source.calls, 2);
  });

  it('keeps at most maxEntries values, forgetting the one loaded longest ago', async () => {
    const cache = new Refreshed<string>(60_000, 2);
    for (const key of ['a', 'b', 'c']) await cache.get(key, async () => key.toUpperCase());
    assert.equal(cache.size, 2);
    assert.equal(cache.peek('a'), undefined);
    assert.equal(cache.peek('c')?.value, 'C');
  });
});
