import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { ListenerPool, type ListenerHandlers } from '../../src/engine/listeners.ts';
import { connectError } from '../support/ports.ts';

const LOOPBACK = { host: '127.0.0.1', reusePort: false };

/** Handlers that collect the connections they are given. */
function collecting(): ListenerHandlers & { sockets: Socket[] } {
  const sockets: Socket[] = [];
  return {
    sockets,
    connection: (socket) => void sockets.push(socket),
    error: () => undefined,
  };
}

async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!check()) {
    assert.ok(Date.now() < deadline, 'condition within 5 s');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('ListenerPool', () => {
  it('closes a released listener when no reload holds it', async () => {
    const pool = new ListenerPool();
    const listener = await pool.listen({ owner: 'a', port: 0, ...LOOPBACK }, collecting());
    await listener.release();
    assert.equal(await connectError(listener.port), 'ECONNREFUSED');
  });

  it('keeps a listener released during a hold, and hands what waited to the binding that takes it', async () => {
    const pool = new ListenerPool();
    const first = collecting();
    const listener = await pool.listen({ owner: 'a', port: 0, ...LOOPBACK }, first);
    pool.hold();
    await listener.release();
    const waiting = connect(listener.port, '127.0.0.1');
    await once(waiting, 'connect');
    const second = collecting();
    // Port 0 is kept for the same owner: its successor is on the port clients already use.
    const successor = await pool.listen({ owner: 'a', port: 0, ...LOOPBACK }, second);
    pool.settle();
    assert.equal(successor.port, listener.port);
    await until(() => second.sockets.length === 1);
    assert.equal(first.sockets.length, 0);
    waiting.destroy();
    await successor.release();
  });

  it('closes, when the hold ends, what no binding took over, and resets what waited on it', async () => {
    const pool = new ListenerPool();
    const listener = await pool.listen({ owner: 'a', port: 0, ...LOOPBACK }, collecting());
    pool.hold();
    await listener.release();
    const waiting = connect(listener.port, '127.0.0.1');
    await once(waiting, 'connect');
    const closed = once(waiting, 'close');
    waiting.on('error', () => undefined);
    pool.settle();
    await closed;
    assert.equal(await connectError(listener.port), 'ECONNREFUSED');
  });

  it('keeps waiting no more connections than the backlog', async () => {
    const pool = new ListenerPool();
    const request = { owner: 'a', port: 0, backlog: 2, ...LOOPBACK };
    const listener = await pool.listen(request, collecting());
    pool.hold();
    await listener.release();
    let closed = 0;
    const clients = Array.from({ length: 4 }, () => {
      const client = connect(listener.port, '127.0.0.1');
      client.on('error', () => undefined);
      client.once('close', () => closed++);
      return client;
    });
    await until(() => closed === 2);
    const second = collecting();
    const successor = await pool.listen(request, second);
    pool.settle();
    await until(() => second.sockets.length === 2);
    for (const client of clients) client.destroy();
    await successor.release();
  });

  it('refuses a port another binding holds, naming it', async () => {
    const pool = new ListenerPool();
    const listener = await pool.listen({ owner: 'a', port: 0, ...LOOPBACK }, collecting());
    await assert.rejects(pool.listen({ owner: 'b', port: listener.port, ...LOOPBACK }, collecting()), {
      message: `port ${listener.port} is already in use by binding a`,
    });
    await listener.release();
  });
});
