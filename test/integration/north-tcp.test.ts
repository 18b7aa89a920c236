import { strict as assert } from 'node:assert';
import { Agent, request } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { createHttpServerBinding } from '../../src/bindings/http/server.ts';
import type { ConnectionInfo } from '../../src/bindings/north.ts';
import { createTcpServerBinding, type TcpServerBinding } from '../../src/bindings/tcp/server.ts';
import type { BindingConfig, LoadedConfig } from '../../src/config/index.ts';
import type { Binding, BindingContext } from '../../src/engine/binding.ts';
import { Engine } from '../../src/engine/engine.ts';
import { BindingRegistry } from '../../src/engine/registry.ts';
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

describe('tcp server across a reload', () => {
  const configOf = (...bindings: BindingConfig[]): LoadedConfig => ({
    file: 'test.yaml',
    name: 'test',
    bindings: new Map(bindings.map((b) => [b.name, b])),
    warnings: [],
  });

  /**
   * Stands in for the chain behind a listener (http, proxies, the kafka cache): greets each
   * connection with its label, holds one connection open until it drains, and takes a while to
   * start and to stop, as a chain does.
   */
  function greeterRegistry(events: string[]): BindingRegistry {
    return new BindingRegistry()
      .register('tcp', 'server', createTcpServerBinding)
      .register('test', 'greeter', (ctx: BindingContext): Binding => {
        const label = String((ctx.config.options as { label?: string }).label);
        const held = new Set<Socket>();
        return Object.assign(
          {
            name: ctx.config.name,
            config: ctx.config,
            async start() {
              await new Promise((resolve) => setTimeout(resolve, 300));
              events.push(`start ${label}`);
            },
            async stop() {
              events.push(`stop ${label}`);
            },
          },
          {
            acceptConnection(socket: Socket): void {
              if (held.size === 0) {
                held.add(socket);
                socket.write(label);
                return;
              }
              socket.end(label);
            },
            drain(): void {
              // A long-lived connection that takes its time to finish, as an SSE stream does.
              setTimeout(() => {
                for (const socket of held) socket.end();
              }, 300);
            },
          },
        );
      });
  }

  /** Connects every 5 ms until `done`: what each attempt got (a greeting or an error code). */
  async function connectLoop(port: number, done: Promise<unknown>): Promise<string[]> {
    const outcomes: Promise<string>[] = [];
    let finished = false;
    void done.finally(() => (finished = true));
    const attempt = (): Promise<string> =>
      new Promise((resolve) => {
        const socket = connect(port, '127.0.0.1');
        socket.setEncoding('utf8');
        socket.once('data', (greeting: string) => {
          socket.destroy();
          resolve(greeting);
        });
        socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
        socket.once('close', () => resolve('closed unanswered'));
      });
    while (!finished) {
      outcomes.push(attempt());
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    // Those that arrived late in the reload are answered by the new chain.
    outcomes.push(attempt());
    return Promise.all(outcomes);
  }

  it('keeps listening while the chain behind it restarts: connections wait, none is refused', async () => {
    const events: string[] = [];
    const tcp = bindingConfig('tcp', 'tcp', 'server', { host: '127.0.0.1', port: 0 }, 'north');
    const v1 = configOf(tcp, bindingConfig('north', 'test', 'greeter', { label: 'v1' }));
    const engine = new Engine(v1, greeterRegistry(events), {
      logger: pino({ level: 'silent' }),
      stateDir: '/nonexistent',
    });
    await engine.start();
    try {
      const port = (engine.binding('tcp') as TcpServerBinding).ports[0] ?? 0;
      // Held by v1 until it drains, which the old listener waits for.
      const held = connect(port, '127.0.0.1');
      await once(held, 'data');
      const reload = engine.reload(configOf(tcp, bindingConfig('north', 'test', 'greeter', { label: 'v2' })));
      const outcomes = await connectLoop(port, reload);
      await reload;
      assert.deepEqual(events, ['start v1', 'stop v1', 'start v2']);
      const refused = outcomes.filter((o) => o !== 'v1' && o !== 'v2');
      assert.deepEqual(refused, [], `${refused.length} of ${outcomes.length} connections failed`);
      assert.ok(outcomes.includes('v2'), 'connections made during the reload are served by the new chain');
      // A port the system chose is kept for the binding across its restart.
      assert.equal((engine.binding('tcp') as TcpServerBinding).ports[0], port);
      held.destroy();
    } finally {
      await engine.stop(1_000);
    }
  });

  it('leaves an exit that does not restart serving its connections and taking new ones', async () => {
    const registry = new BindingRegistry()
      .register('tcp', 'server', createTcpServerBinding)
      .register('http', 'server', createHttpServerBinding)
      .register('test', 'hello', (ctx: BindingContext): Binding =>
        Object.assign(
          { name: ctx.config.name, config: ctx.config, start: async () => {}, stop: async () => {} },
          {
            handleRequest(_req: unknown, res: { end(body: string): void }): void {
              res.end('hello');
            },
          },
        ),
      );
    const http = bindingConfig('http', 'http', 'server', {}, 'hello');
    const hello = bindingConfig('hello', 'test', 'hello');
    const tcp = (options: Record<string, unknown>) => bindingConfig('tcp', 'tcp', 'server', options, 'http');
    const port = await reservePort();
    const engine = new Engine(configOf(tcp({ host: '127.0.0.1', port }), http, hello), registry, {
      logger: pino({ level: 'silent' }),
      stateDir: '/nonexistent',
    });
    await engine.start();
    try {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      const get = () =>
        new Promise<string>((resolve, reject) => {
          request({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => (body += chunk));
            res.on('end', () => resolve(body));
          })
            .on('error', reject)
            .end();
        });
      assert.equal(await get(), 'hello');
      // Only the listener changes: the http server behind it keeps running.
      const plan = await engine.reload(
        configOf(tcp({ host: '127.0.0.1', port, keepalive: true }), http, hello),
      );
      assert.deepEqual(plan.stop, ['tcp']);
      assert.equal(await get(), 'hello', 'the kept-alive connection still works');
      agent.destroy();
      assert.equal(await get(), 'hello', 'a new connection is served');
    } finally {
      await engine.stop(1_000);
    }
  });
});
