import { strict as assert } from 'node:assert';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { SseEvent, SseRequest, SseStream } from '../../src/bindings/north.ts';
import type { CacheMessage } from '../../src/bindings/kafka/cache_client/index.ts';
import { encodeProgress } from '../../src/bindings/proxies/progress-token.ts';
import { compileEventId } from '../../src/bindings/sse-kafka/event-id.ts';
import { formatEvent } from '../../src/bindings/sse/framing.ts';
import { TopicDeletedError } from '../../src/bindings/kafka/cache_server/errors.ts';
import {
  ERROR_RETRY_MS,
  frameOf,
  SseKafkaProxyBinding,
  toEvent,
} from '../../src/bindings/sse-kafka/proxy.ts';
import type { Binding } from '../../src/engine/binding.ts';
import { closeFakeTopics, FakeCacheServer, FakeTopic, fakeCacheClient } from '../support/fake-cache.ts';
import type { RouteConfig } from '../../src/config/index.ts';

function message(offset: number, key: string | null, value: string | null): CacheMessage {
  return {
    partition: 0,
    offset: BigInt(offset),
    timestamp: 0,
    key: key === null ? null : Buffer.from(key),
    value: value === null ? null : Buffer.from(value),
    headers: [],
    filters: 0,
    progress: new Map([
      [0, BigInt(offset + 1)],
      [1, 7n],
    ]),
  };
}

describe('sse-kafka event ids', () => {
  it('round-trips progress through the default ${etag} id', () => {
    const format = compileEventId();
    const p = new Map([
      [0, 12n],
      [3, 40n],
    ]);
    const id = format.format(p, Buffer.from('k'));
    assert.deepEqual(format.progressOf(id), p);
  });

  it('round-trips through an id that carries the key as well', () => {
    const format = compileEventId('["${base64(key)}","${etag}"]');
    const p = new Map([[0, 5n]]);
    const id = format.format(p, Buffer.from('key/with+odd=bytes'));
    assert.deepEqual(JSON.parse(id), [
      Buffer.from('key/with+odd=bytes').toString('base64'),
      encodeProgress(p),
    ]);
    assert.deepEqual(format.progressOf(id), p);
    assert.deepEqual(format.progressOf(format.format(p, null)), p);
  });

  it('does not resume from ids it did not make', () => {
    const format = compileEventId('["${base64(key)}","${etag}"]');
    assert.equal(format.progressOf('12'), undefined);
    assert.equal(format.progressOf('["a","!!"]'), undefined);
  });

  it('refuses templates that cannot be resumed from', () => {
    assert.throws(() => compileEventId('${base64(key)}'), /exactly once/);
    assert.throws(() => compileEventId('${etag}${etag}'), /exactly once/);
    assert.throws(() => compileEventId('${etag}-${params.id}'), /unknown expression/);
  });

  it('makes tombstones delete events carrying the key', () => {
    const format = compileEventId();
    assert.deepEqual(toEvent(message(4, 'gone', null), format), {
      id: format.format(message(4, 'gone', null).progress, null),
      type: 'delete',
      data: 'gone',
    });
    assert.equal(toEvent(message(4, 'k', 'hello'), format).data, 'hello');
    assert.equal(toEvent(message(4, 'k', 'hello'), format).type, undefined);
  });

  it('frames a message as formatEvent frames its event, sharing the data lines of a shared value', () => {
    const format = compileEventId('["${base64(key)}","${etag}"]');
    for (const m of [message(4, 'gone', null), message(5, 'k', 'two\nlines'), message(6, null, '')])
      assert.equal(frameOf(m, format), formatEvent(toEvent(m, format)));
    const shared = message(7, 'k', 'v');
    const other = { ...shared, progress: new Map([[0, 99n]]) };
    assert.equal(frameOf(other, format).split('\n').slice(1).join('\n'), 'data:v\n\n');
  });
});

/** A cache stream stand-in that records how far it has been pulled. */
class FakeCacheStream {
  readonly messages: CacheMessage[];
  pulled = 0;
  closed = false;
  #wake: (() => void) | undefined;
  constructor(messages: CacheMessage[]) {
    this.messages = messages;
  }
  async nextBatch(max: number): Promise<CacheMessage[]> {
    for (;;) {
      if (this.closed) return [];
      if (this.#error !== undefined) throw this.#error;
      const batch = this.messages.slice(this.pulled, this.pulled + max);
      if (batch.length > 0) {
        this.pulled += batch.length;
        return batch;
      }
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }
  #error: Error | undefined;
  push(...messages: CacheMessage[]): void {
    this.messages.push(...messages);
    this.#wake?.();
  }
  /** Ends the stream with `error` at the next pull, as a deleted topic ends a cache stream. */
  fail(error: Error): void {
    this.#error = error;
    this.#wake?.();
  }
  close(): void {
    this.closed = true;
    this.#wake?.();
  }
}

class FakeSseStream implements SseStream {
  readonly sent: SseEvent[] = [];
  /** Text of each sendFramed() call. */
  readonly writes: string[] = [];
  events = 0;
  readonly #controller = new AbortController();
  accepting = true;
  #drained: (() => void) | undefined;
  retry: number | undefined;
  send(event: SseEvent): boolean {
    if (this.closed.aborted) return false;
    this.sent.push(event);
    this.events++;
    return this.accepting;
  }
  sendFramed(frames: string, count: number): boolean {
    if (this.closed.aborted) return false;
    this.writes.push(frames);
    this.events += count;
    return this.accepting;
  }
  async sendSliced(pieces: readonly (string | Buffer)[]): Promise<boolean> {
    if (this.closed.aborted) return false;
    this.writes.push(pieces.map((piece) => piece.toString()).join(''));
    this.events++;
    if (!this.accepting) await this.drained();
    return !this.closed.aborted;
  }
  drained(): Promise<void> {
    return this.accepting ? Promise.resolve() : new Promise((resolve) => (this.#drained = resolve));
  }
  drain(): void {
    this.accepting = true;
    this.#drained?.();
  }
  comment(): void {}
  close(retryMs?: number): void {
    this.retry = retryMs;
    this.#controller.abort();
  }
  get closed(): AbortSignal {
    return this.#controller.signal;
  }
}

const tick = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 10));

async function proxyWith(open: (topic: string, options: unknown) => Promise<unknown>, routes: RouteConfig[]) {
  const client = {
    name: 'north',
    start: async () => {},
    stop: async () => {},
    open,
    lookup: async () => undefined,
    attach: () => Promise.reject(new Error('unused')),
  };
  const proxy = new SseKafkaProxyBinding({
    config: { name: 'events', type: 'sse-kafka', kind: 'proxy', options: {}, routes },
    logger: pino({ level: 'silent' }),
    metrics: new Registry(),
    stateDir: '/nonexistent',
    lookup: () => client as unknown as Binding,
  });
  await proxy.start(new AbortController().signal);
  return proxy;
}

const request = (path: string, lastEventId?: string): SseRequest => ({
  path,
  query: new URLSearchParams(),
  headers: {},
  params: {},
  ...(lastEventId === undefined ? {} : { lastEventId }),
});

describe('sse-kafka proxy', () => {
  const routes: RouteConfig[] = [
    {
      when: [{ path: '/events/{id}' }],
      exit: 'north',
      with: { topic: 't', filters: [{ key: '${params.id}' }] },
    },
  ];

  it('writes every ready message at once, stops pulling while the client is behind, and closes the cache stream with the event stream', async () => {
    const cache = new FakeCacheStream([message(0, 'a', '1'), message(1, 'a', '2'), message(2, 'a', '3')]);
    let opened: Record<string, unknown> | undefined;
    const proxy = await proxyWith(async (_topic, options) => {
      opened = options as Record<string, unknown>;
      return cache;
    }, routes);
    const stream = new FakeSseStream();
    stream.accepting = false;
    const serving = proxy.handleEventStream(request('/events/a'), stream);
    await tick();
    assert.equal(stream.writes.length, 1, 'the three ready messages go out in one write');
    assert.equal(stream.events, 3);
    assert.deepEqual(opened?.['filters'], [[{ key: Buffer.from('a') }]]);
    cache.push(message(3, 'a', '4'), message(4, 'a', '5'));
    await tick();
    assert.equal(cache.pulled, 3, 'nothing more is pulled before the client catches up');
    stream.drain();
    await tick();
    assert.equal(cache.pulled, 5);
    assert.equal(stream.events, 5);
    const format = compileEventId();
    assert.equal(
      stream.writes.join(''),
      [0, 1, 2, 3, 4].map((i) => formatEvent(toEvent(message(i, 'a', String(i + 1)), format))).join(''),
    );
    stream.close();
    await serving;
    assert.ok(cache.closed);
  });

  it('resumes from the progress in Last-Event-ID', async () => {
    const format = compileEventId();
    const id = format.format(new Map([[0, 9n]]), null);
    let opened: Record<string, unknown> | undefined;
    const cache = new FakeCacheStream([]);
    const proxy = await proxyWith(async (_topic, options) => {
      opened = options as Record<string, unknown>;
      return cache;
    }, routes);
    const stream = new FakeSseStream();
    const serving = proxy.handleEventStream(request('/events/a', id), stream);
    await tick();
    assert.deepEqual(opened?.['partitions'], new Map([[0, 9n]]));
    stream.close();
    await serving;
  });

  it('ends with an error event when the topic cannot be opened', async () => {
    const proxy = await proxyWith(async () => {
      throw new Error('UNKNOWN_TOPIC_OR_PARTITION');
    }, routes);
    const stream = new FakeSseStream();
    await proxy.handleEventStream(request('/events/a'), stream);
    assert.deepEqual(stream.sent, [{ type: 'error', data: 'topic t: UNKNOWN_TOPIC_OR_PARTITION' }]);
    assert.ok(stream.closed.aborted);
    assert.ok(stream.retry !== undefined);
  });

  it('ends with a topic-deleted event clearing the last event id when the topic is deleted', async () => {
    const cache = new FakeCacheStream([message(0, 'a', '1')]);
    const proxy = await proxyWith(async () => cache, routes);
    const stream = new FakeSseStream();
    const serving = proxy.handleEventStream(request('/events/a'), stream);
    await tick();
    assert.equal(stream.events, 1);
    cache.fail(new TopicDeletedError('t'));
    await serving;
    assert.deepEqual(stream.sent, [{ id: '', type: 'topic-deleted', data: 'topic "t" was deleted' }]);
    assert.equal(
      formatEvent(stream.sent[0] ?? { data: '' }),
      'id:\nevent:topic-deleted\ndata:topic "t" was deleted\n\n',
    );
    assert.ok(stream.closed.aborted);
    assert.equal(stream.retry, ERROR_RETRY_MS);
    assert.ok(cache.closed);
  });

  it('refuses at start a filter naming a parameter the route does not capture', async () => {
    await assert.rejects(
      proxyWith(
        async () => undefined,
        [
          {
            when: [{ path: '/events' }],
            exit: 'north',
            with: { topic: 't', filters: [{ key: '${params.id}' }] },
          },
        ],
      ),
      /not a path parameter/,
    );
  });
});

describe('sse-kafka proxy over a cache stream', () => {
  after(closeFakeTopics);

  it('resumes a made-up Last-Event-ID from the topic as it is: no partition it lacks, no offset past an end', async () => {
    const topic = new FakeTopic('forged', { partitions: 2 });
    for (let i = 0; i < 3; i++) {
      topic.put(0, `a${i}`, `p0-${i}`);
      topic.put(1, `b${i}`, `p1-${i}`);
    }
    const server = new FakeCacheServer(topic);
    const proxy = new SseKafkaProxyBinding({
      config: {
        name: 'events',
        type: 'sse-kafka',
        kind: 'proxy',
        options: {},
        routes: [{ when: [{ path: '/events' }], exit: 'north', with: { topic: 'forged' } }],
      },
      logger: pino({ level: 'silent' }),
      metrics: new Registry(),
      stateDir: '/nonexistent',
      lookup: () => fakeCacheClient('north', server),
    });
    await proxy.start(new AbortController().signal);
    const format = compileEventId();
    const forged = format.format(
      new Map([
        [0, 2n ** 62n],
        [1, 1n],
        [7, 3n],
        [123_456, 9n],
      ]),
      null,
    );
    const stream = new FakeSseStream();
    const serving = proxy.handleEventStream(request('/events', forged), stream);
    const frames = async (count: number): Promise<string[]> => {
      for (let i = 0; i < 200 && stream.events < count; i++) await tick();
      return stream.writes
        .join('')
        .split('\n\n')
        .filter((frame) => frame !== '');
    };
    // Partition 1 resumes where the id says; partition 0 starts at its end, so what comes next
    // is delivered rather than waited past for good.
    assert.deepEqual(
      (await frames(2)).map((frame) => frame.split('\n')[1]),
      ['data:p1-1', 'data:p1-2'],
    );
    topic.put(0, 'a3', 'p0-3');
    const all = await frames(3);
    assert.equal(all[2]?.split('\n')[1], 'data:p0-3');
    for (const frame of all) {
      const progress = format.progressOf(frame.split('\n')[0]?.slice('id:'.length) ?? '');
      assert.ok(progress !== undefined);
      assert.deepEqual([...progress.keys()].sort(), [0, 1], "ids name only the topic's partitions");
      for (const [partition, offset] of progress) assert.ok(offset <= topic.store(partition).nextOffset);
    }
    stream.close();
    await serving;
    await proxy.stop(new AbortController().signal);
  });
});
