import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Engine } from '../../src/engine/engine.ts';
import { until } from '../support/until.ts';
import { startYamlEngine } from '../support/yaml-engine.ts';

// The echo and fan servers Zilla's tcp.echo, http.echo and tcp.reflect examples are made of, on
// real sockets: what they send back, to whom, and what a client that stops reading costs.

let dir: string;
const engines: Engine[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kgate-echo-fan-'));
});

after(async () => {
  for (const engine of engines) await engine.stop(5_000);
  await rm(dir, { recursive: true, force: true });
});

async function start(bindings: string): Promise<number> {
  const yaml = `name: echo-fan\nbindings:\n  tcp:\n    type: tcp\n    kind: server\n    options: { host: 127.0.0.1, port: 0 }\n${bindings}`;
  const { engine, port } = await startYamlEngine(yaml, 'echo-fan.yaml', join(dir, String(engines.length)));
  engines.push(engine);
  return port;
}

/** A connected client and everything it has received so far. */
async function client(port: number): Promise<{ socket: Socket; received: () => string }> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  let text = '';
  socket.setEncoding('latin1').on('data', (chunk: string) => (text += chunk));
  return { socket, received: () => text };
}

describe('echo server', () => {
  it('sends every byte of a connection back, and ends when the client does', async () => {
    const port = await start('    exit: echo\n  echo: { type: echo, kind: server }\n');
    const { socket, received } = await client(port);
    socket.write('Hello, world\n');
    await until('the echo', () => received() === 'Hello, world\n', 5_000);
    socket.end('bye\n');
    await once(socket, 'close');
    assert.equal(received(), 'Hello, world\nbye\n');
  });

  it('answers an HTTP request 200 with its headers and body, as Zilla does', async () => {
    const port = await start(
      '    exit: http\n  http: { type: http, kind: server, exit: echo }\n  echo: { type: echo, kind: server }\n',
    );
    const res = await fetch(`http://127.0.0.1:${port}/`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', 'x-greeting': 'hi' },
      body: 'Hello, world',
    });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'Hello, world');
    assert.equal(res.headers.get('content-type'), 'text/plain');
    assert.equal(res.headers.get('x-greeting'), 'hi');
    assert.equal(res.headers.get('content-length'), '12');
    assert.equal(res.headers.get('host'), null);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  });
});

describe('fan server', () => {
  it('sends what one client writes to every connected client, through its echo exit', async () => {
    const port = await start(
      '    exit: fan\n  fan: { type: fan, kind: server, exit: echo }\n  echo: { type: echo, kind: server }\n',
    );
    const one = await client(port);
    const two = await client(port);
    // What the second client writes reaches the first once both are in the group.
    two.socket.write('ready\n');
    await until('both in the group', () => one.received() === 'ready\n', 5_000);
    one.socket.write('Hello, one\n');
    const first = 'ready\nHello, one\n';
    await until('the first line to both', () => one.received() === first && two.received() === first, 5_000);
    two.socket.write('Hello, two\n');
    const both = `${first}Hello, two\n`;
    await until('the second line to both', () => one.received() === both && two.received() === both, 5_000);
    one.socket.end();
    await once(one.socket, 'close');
    // The others go on after one leaves.
    two.socket.write('still here\n');
    await until('the line after one left', () => two.received() === `${both}still here\n`, 5_000);
    two.socket.destroy();
  });

  it('closes a client that does not read, and the others get everything', { timeout: 90_000 }, async () => {
    const port = await start(
      '    exit: fan\n  fan: { type: fan, kind: server, exit: echo }\n  echo: { type: echo, kind: server }\n',
    );
    const reader = await client(port);
    const stalled = connect(port, '127.0.0.1');
    await once(stalled, 'connect');
    stalled.pause();
    const closed = once(stalled, 'close');
    // What the stalled client writes reaches the reader once it is in the group.
    stalled.write('x');
    await until('the stalled client in the group', () => reader.received() === 'x', 5_000);
    // Far more than the kernel's buffers and the fan's 1 MiB bound per client hold.
    const total = 32 * 1024 * 1024;
    const block = Buffer.alloc(64 * 1024, 0x61);
    for (let sent = 0; sent < total; sent += block.length)
      if (!reader.socket.write(block)) await once(reader.socket, 'drain');
    await until('everything back to the reader', () => reader.received().length === total + 1, 60_000);
    // Read now, the stalled client finds what the kernel held for it, then the end of its connection.
    let got = 0;
    stalled.on('data', (chunk: Buffer) => (got += chunk.length));
    stalled.resume();
    await closed;
    assert.ok(got < total, `${got} bytes reached the client that did not read`);
    reader.socket.destroy();
  });
});
