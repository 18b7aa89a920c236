import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { SseRequest, SseStream } from '../../src/bindings/north.ts';
import type { SseServerBinding } from '../../src/bindings/sse/server.ts';
import type { ResponseSseStream } from '../../src/bindings/sse/stream.ts';
import { bindingConfig, handlerConfig, startChain, type Chain } from './north-harness.ts';

/** Well above the socket's write high-water mark (64 KiB), so the two bounds are told apart. */
const MAX_BUFFERED = 256 * 1024;

interface OpenStream {
  res: IncomingMessage;
  text(): string;
  waitFor(pattern: RegExp): Promise<string>;
  close(): void;
}

async function open(port: number, path: string, headers: Record<string, string> = {}): Promise<OpenStream> {
  const req = httpRequest({
    host: '127.0.0.1',
    port,
    path,
    agent: false,
    headers: { accept: 'text/event-stream', ...headers },
  });
  req.end();
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  let text = '';
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => (text += chunk));
  return {
    res,
    text: () => text,
    async waitFor(pattern: RegExp): Promise<string> {
      const deadline = Date.now() + 5_000;
      while (!pattern.test(text)) {
        if (Date.now() > deadline) throw new Error(`no ${pattern} in ${JSON.stringify(text)}`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      return text;
    },
    close: () => req.destroy(),
  };
}

describe('sse server', () => {
  let chain: Chain;
  let port: number;
  const seen: SseRequest[] = [];
  const streams = new Map<string, SseStream>();
  const producers = new Map<string, (stream: SseStream) => Promise<void>>();

  const events = {
    handleEventStream(request: SseRequest, stream: SseStream): Promise<void> | void {
      seen.push(request);
      const topic = request.params['topic'] ?? '';
      streams.set(topic, stream);
      if (topic === 'broken') throw new Error('cannot serve');
      return producers.get(topic)?.(stream);
    },
  };

  before(async () => {
    chain = await startChain(
      [
        handlerConfig('events'),
        bindingConfig('sse', 'sse', 'server', { retry: 2500 }, undefined, [
          { when: [{ path: '/events/{topic}' }], exit: 'events' },
        ]),
        bindingConfig('http', 'http', 'server', {}, 'sse'),
        bindingConfig('tcp', 'tcp', 'server', { host: '127.0.0.1', port: 0 }, 'http'),
      ],
      { handlers: { events }, sse: { keepAliveMs: 50, maxBufferedBytes: MAX_BUFFERED } },
    );
    port = chain.port();
  });
  after(() => chain.stop());

  it('streams events with ids, types and multi-line data, a retry hint and keep-alive comments', async () => {
    producers.set('framing', async (stream) => {
      stream.send({ id: '1', type: 'greeting', data: 'hello\nworld' });
      stream.comment('between');
      stream.send({ data: 'plain' });
    });
    const client = await open(port, '/events/framing');
    try {
      assert.equal(client.res.statusCode, 200);
      assert.equal(client.res.headers['content-type'], 'text/event-stream');
      assert.equal(client.res.headers['cache-control'], 'no-cache');
      const text = await client.waitFor(/data:plain\n\n:\n\n/);
      assert.ok(
        text.startsWith(
          'retry: 2500\n\nid:1\nevent:greeting\ndata:hello\ndata:world\n\n: between\ndata:plain\n\n:\n\n',
        ),
        JSON.stringify(text),
      );
    } finally {
      client.close();
    }
  });

  it('passes Last-Event-ID through, with the lastEventId query parameter as fallback', async () => {
    const a = await open(port, '/events/resume', { 'last-event-id': '42' });
    const b = await open(port, '/events/resume?lastEventId=17');
    const c = await open(port, '/events/resume');
    a.close();
    b.close();
    c.close();
    const resumes = seen.filter((r) => r.path === '/events/resume');
    assert.deepEqual(
      resumes.map((r) => r.lastEventId),
      ['42', '17', undefined],
    );
    assert.equal(resumes[1]?.query.get('lastEventId'), '17');
    assert.deepEqual(resumes[0]?.params, { topic: 'resume' });
  });

  it('signals closing to the handler when the client goes away', async () => {
    const client = await open(port, '/events/leaving');
    const stream = streams.get('leaving');
    assert.ok(stream);
    assert.equal(stream.closed.aborted, false);
    client.close();
    await once(stream.closed, 'abort');
    assert.equal(stream.send({ data: 'too late' }), false);
  });

  it('refuses other methods, other media types and unknown paths', async () => {
    const reply = (method: string, path: string, accept: string): Promise<IncomingMessage> => {
      const req = httpRequest({ host: '127.0.0.1', port, path, method, agent: false, headers: { accept } });
      req.end();
      return once(req, 'response').then(([res]) => {
        (res as IncomingMessage).resume();
        return res as IncomingMessage;
      });
    };
    const post = await reply('POST', '/events/x', 'text/event-stream');
    assert.equal(post.statusCode, 405);
    assert.equal(post.headers['allow'], 'GET');
    assert.equal((await reply('GET', '/events/x', 'application/json')).statusCode, 406);
    assert.equal((await reply('GET', '/elsewhere', 'text/event-stream')).statusCode, 404);
  });

  it('closes the stream when the handler fails', async () => {
    const client = await open(port, '/events/broken');
    await once(client.res, 'end');
    assert.equal(client.text(), 'retry: 2500\n\nretry: 2500\n\n');
    assert.ok(chain.logs.some((l) => l.msg === 'event stream handler failed'));
  });

  it('tells a producer to wait for a slow client and buffers little meanwhile', async () => {
    const event = { data: 'x'.repeat(1024) };
    let sent = 0;
    let waiting = false;
    let stop = false;
    let buffered = 0;
    producers.set('slow', async (stream) => {
      while (!stop && !stream.closed.aborted) {
        while (!stop && stream.send(event)) sent++;
        sent++;
        buffered = Math.max(buffered, (stream as ResponseSseStream).buffered);
        waiting = true;
        await stream.drained();
        waiting = false;
      }
    });
    const until = async (condition: () => boolean, what: string): Promise<void> => {
      const deadline = Date.now() + 10_000;
      while (!condition()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    };
    // A raw socket that sends the request and then reads nothing.
    const socket = connect(port, '127.0.0.1');
    socket.pause();
    socket.write(`GET /events/slow HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n`);
    try {
      // Once the kernel buffers on both sides are full, the producer stays parked in drained().
      let last = -1;
      await until(() => {
        const stuck = waiting && sent === last;
        last = sent;
        return stuck;
      }, 'the producer is parked');
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(waiting, true);
      const parkedAt = sent;
      // What is queued in user space stays near the write high-water mark, whatever the kernel holds.
      assert.ok(buffered <= 64 * 1024 + 2 * 1024, `buffered ${buffered}`);
      socket.resume();
      await until(() => sent > parkedAt + 100, 'the producer goes on');
    } finally {
      stop = true;
      socket.destroy();
    }
  });

  it('cuts a stream whose producer ignores backpressure once the bound is reached', async () => {
    let peak = 0;
    let markCut = (): void => {};
    const cut = new Promise<undefined>((resolve) => (markCut = () => resolve(undefined)));
    producers.set('flood', async (stream) => {
      const event = { data: 'y'.repeat(4096) };
      for (let i = 0; i < 100_000 && !stream.closed.aborted; i++) {
        stream.send(event);
        peak = Math.max(peak, (stream as ResponseSseStream).buffered);
      }
      markCut();
    });
    const socket = connect(port, '127.0.0.1');
    socket.pause();
    socket.write(`GET /events/flood HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n`);
    try {
      await cut;
      assert.equal(streams.get('flood')?.closed.aborted, true);
      assert.ok(peak > 64 * 1024 && peak <= MAX_BUFFERED + 4096 + 64, `peak ${peak}`);
      assert.ok(chain.logs.some((l) => l.msg === 'client too slow; closing its event stream'));
    } finally {
      socket.destroy();
    }
  });

  it('on shutdown, ends open streams with the retry hint', async () => {
    const client = await open(port, '/events/lasting');
    await client.waitFor(/^retry: 2500\n\n/);
    const sse = chain.binding<SseServerBinding>('sse');
    assert.equal(sse.openStreams, 1);
    const ended = once(client.res, 'end');
    await chain.stop(2_000);
    await ended;
    assert.match(client.text(), /retry: 2500\n\n$/);
    assert.equal(sse.openStreams, 0);
  });
});
