import { strict as assert } from 'node:assert';
import { connect, createServer, type Socket } from 'node:net';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import type { ConnectionInfo } from '../../src/bindings/north.ts';
import { reserveConsecutivePorts, reservePort } from '../support/ports.ts';
import { bindingConfig, handlerConfig, startChain } from './north-harness.ts';

/** A ConnectionHandler that greets each connection with the port and exit it arrived on. */
function greeter(label: string, accepted: ConnectionInfo[] = []): object {
  return {
    acceptConnection(socket: Socket, info: ConnectionInfo): void {
      accepted.push(info);
      socket.end(`${label}:${info.localPort}`);
    },
  };
}

async function readAll(port: number): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  let text = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (text += chunk));
  await once(socket, 'close');
  return text;
}

describe('tcp server', () => {
  it('listens on a list with a range and routes by port', async () => {
    const [a, b, c] = await reserveConsecutivePorts(3);
    assert.ok(a !== undefined && b !== undefined && c !== undefined);
    const accepted: ConnectionInfo[] = [];
    const chain = await startChain(
      [
        handlerConfig('north'),
        handlerConfig('other'),
        bindingConfig('tcp', 'tcp', 'server', { host: '127.0.0.1', port: [a, `${b}-${c}`] }, 'north', [
          { when: [{ port: c }], exit: 'other' },
        ]),
      ],
      { handlers: { north: greeter('north', accepted), other: greeter('other') } },
    );
    try {
      assert.equal(await readAll(a), `north:${a}`);
      assert.equal(await readAll(b), `north:${b}`);
      assert.equal(await readAll(c), `other:${c}`);
      assert.equal(accepted[0]?.remoteAddress, '127.0.0.1');
      assert.ok((accepted[0]?.remotePort ?? 0) > 0);
    } finally {
      await chain.stop();
    }
  });

  it('routes by remote address range, falling back to the default exit', async () => {
    const chain = await startChain(
      [
        handlerConfig('north'),
        handlerConfig('local'),
        bindingConfig('tcp', 'tcp', 'server', { host: '127.0.0.1', port: 0 }, 'north', [
          { when: [{ cidr: '10.0.0.0/8' }], exit: 'north' },
          { when: [{ cidr: '127.0.0.0/8' }], exit: 'local' },
        ]),
      ],
      { handlers: { north: greeter('north'), local: greeter('local') } },
    );
    try {
      const port = chain.port();
      assert.equal(await readAll(port), `local:${port}`);
    } finally {
      await chain.stop();
    }
  });

  it('says which port is in use, and releases the ports it did open', async () => {
    const free = await reservePort();
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const address = blocker.address();
    assert.ok(address !== null && typeof address === 'object');
    const taken = address.port;
    try {
      await assert.rejects(
        startChain(
          [
            handlerConfig('north'),
            bindingConfig('tcp', 'tcp', 'server', { host: '127.0.0.1', port: [free, taken] }, 'north'),
          ],
          { handlers: { north: greeter('north') } },
        ),
        { message: `binding tcp failed to start: port ${taken} is already in use` },
      );
      // The port listened on before the failure is free again.
      const probe = createServer();
      await new Promise<void>((resolve, reject) => {
        probe.once('error', reject);
        probe.listen(free, '127.0.0.1', resolve);
      });
      await new Promise((resolve) => probe.close(resolve));
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  it('refuses an exit that cannot take connections', async () => {
    await assert.rejects(
      startChain(
        [
          handlerConfig('north'),
          bindingConfig('tcp', 'tcp', 'server', { host: '127.0.0.1', port: 0 }, 'north'),
        ],
        { handlers: { north: {} } },
      ),
      { message: 'binding tcp failed to start: exit north (test north) does not accept connections' },
    );
  });

  it('on stop, lets a busy connection finish, then cuts what is left at the deadline', async () => {
    const held: Socket[] = [];
    let drained = 0;
    const chain = await startChain(
      [
        handlerConfig('north'),
        bindingConfig('tcp', 'tcp', 'server', { host: '127.0.0.1', port: 0 }, 'north'),
      ],
      {
        handlers: {
          north: {
            acceptConnection(socket: Socket): void {
              held.push(socket);
            },
            drain(): void {
              drained++;
              // One connection finishes on the drain request; the other never does.
              held[0]?.end('bye');
            },
          },
        },
      },
    );
    const port = chain.port();
    const finishing = connect(port, '127.0.0.1');
    const stuck = connect(port, '127.0.0.1');
    await Promise.all([once(finishing, 'connect'), once(stuck, 'connect')]);
    while (held.length < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    let said = '';
    finishing.on('data', (chunk: Buffer) => (said += chunk.toString()));
    finishing.on('end', () => finishing.end());
    const stuckClosed = once(stuck, 'close');
    const started = Date.now();
    await chain.stop(300);
    assert.equal(drained, 1);
    assert.equal(said, 'bye');
    await stuckClosed;
    assert.ok(Date.now() - started >= 250, 'waited for the drain deadline');
    // Nothing listens any more.
    const refused = connect(port, '127.0.0.1');
    const [error] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
    assert.equal(error.code, 'ECONNREFUSED');
  });
});
