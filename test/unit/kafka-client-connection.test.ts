import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { parseSasl, parseServers, resolveTransport } from '../../src/bindings/kafka/client/config.ts';
import { Api } from '../../src/bindings/kafka/client/apis/index.ts';
import { BrokerConnection } from '../../src/bindings/kafka/client/connection.ts';
import {
  backoffDelay,
  ConnectionError,
  MalformedResponseError,
} from '../../src/bindings/kafka/client/index.ts';
import type { BindingConfig } from '../../src/config/index.ts';
import { until } from '../support/until.ts';

interface Request {
  readonly apiKey: number;
  readonly version: number;
  readonly correlationId: number;
}

/** A pretend broker: answers ApiVersions properly, and everything else as the test says. */
async function fakeBroker(
  answer: (request: Request, socket: Socket) => void,
): Promise<{ server: Server; port: number; seen: Request[] }> {
  const seen: Request[] = [];
  const server = createServer((socket) => {
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 4 && buffered.length >= 4 + buffered.readInt32BE(0)) {
        const size = buffered.readInt32BE(0);
        const request = {
          apiKey: buffered.readInt16BE(4),
          version: buffered.readInt16BE(6),
          correlationId: buffered.readInt32BE(8),
        };
        buffered = buffered.subarray(4 + size);
        seen.push(request);
        if (request.apiKey === 18) socket.write(apiVersionsResponse(request.correlationId));
        else answer(request, socket);
      }
    });
    socket.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { server, port: address.port, seen };
}

function apiVersionsResponse(correlationId: number): Buffer {
  // v4 (flexible body, v0 header): error 0, [Metadata 0..12], throttle, tags
  const body = Buffer.from([0, 0, 2, 0, 3, 0, 0, 0, 12, 0, 0, 0, 0, 0, 0]);
  const frame = Buffer.alloc(8);
  frame.writeInt32BE(4 + body.length, 0);
  frame.writeInt32BE(correlationId, 4);
  return Buffer.concat([frame, body]);
}

function frame(correlationId: number, body: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeInt32BE(4 + body.length, 0);
  head.writeInt32BE(correlationId, 4);
  return Buffer.concat([head, body]);
}

function connection(
  port: number,
  overrides: Partial<ConstructorParameters<typeof BrokerConnection>[0]> = {},
): BrokerConnection {
  return new BrokerConnection({
    host: '127.0.0.1',
    port,
    clientId: 'test',
    connectTimeoutMs: 2000,
    requestTimeoutMs: 2000,
    maxInFlight: 4,
    maxFrameBytes: 1024 * 1024,
    ...overrides,
  });
}

const metadataRequest = (c: BrokerConnection): Promise<unknown> => c.request(Api.Metadata, []);

describe('kafka client connection', () => {
  const servers: Server[] = [];
  after(() => {
    for (const server of servers) server.close();
  });

  it('sends ApiVersions first and uses the highest shared version', async () => {
    const broker = await fakeBroker((request, socket) => {
      // Metadata v12: throttle, no brokers, null cluster id, controller, no topics, tags
      const body = Buffer.from([0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0]);
      socket.write(frame(request.correlationId, Buffer.concat([Buffer.from([0]), body])));
    });
    servers.push(broker.server);
    const c = connection(broker.port);
    await c.connect();
    await metadataRequest(c);
    assert.deepEqual(
      broker.seen.map((r) => [r.apiKey, r.version]),
      [
        [18, 4],
        [3, 12],
      ],
    );
    c.close();
  });

  it('closes the connection on a malformed response and fails every request on it', async () => {
    const broker = await fakeBroker((request, socket) => {
      socket.write(frame(request.correlationId, Buffer.from([0, 0xff])));
    });
    servers.push(broker.server);
    const c = connection(broker.port);
    await c.connect();
    await assert.rejects(metadataRequest(c), MalformedResponseError);
    assert.equal(c.closed, true);
    await assert.rejects(metadataRequest(c), MalformedResponseError);
  });

  it('treats an unknown correlation id or a negative frame size as a broken connection', async () => {
    for (const reply of [
      (r: Request) => frame(r.correlationId + 1000, Buffer.alloc(8)),
      () => Buffer.from([0xff, 0xff, 0xff, 0xf0, 1, 2, 3]),
    ]) {
      const broker = await fakeBroker((request, socket) => socket.write(reply(request)));
      servers.push(broker.server);
      const c = connection(broker.port);
      await c.connect();
      await assert.rejects(metadataRequest(c), MalformedResponseError);
      assert.equal(c.closed, true);
    }
  });

  it('times out a request the broker never answers and closes the connection', async () => {
    const broker = await fakeBroker(() => undefined);
    servers.push(broker.server);
    const c = connection(broker.port, { requestTimeoutMs: 200 });
    await c.connect();
    await assert.rejects(
      metadataRequest(c),
      (error: unknown) => error instanceof ConnectionError && /timed out/.test(error.message),
    );
    assert.equal(c.closed, true);
  });

  it('keeps at most maxInFlight requests on the wire and sends the rest as answers arrive', async () => {
    const held: Request[] = [];
    let socketRef: Socket | undefined;
    const broker = await fakeBroker((request, socket) => {
      held.push(request);
      socketRef = socket;
    });
    servers.push(broker.server);
    const c = connection(broker.port, { maxInFlight: 2 });
    await c.connect();
    const requests = [metadataRequest(c), metadataRequest(c), metadataRequest(c)];
    await until('two requests at the broker', () => held.length >= 2);
    // A third one sent too early would arrive right behind them.
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(held.length, 2);
    assert.equal(c.inFlight, 2);
    const body = Buffer.from([0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0]);
    const first = held.shift();
    if (first !== undefined) socketRef?.write(frame(first.correlationId, body));
    await requests[0];
    await until('the third request at the broker', () => held.length >= 2);
    assert.equal(held.length, 2);
    for (const r of held.splice(0)) socketRef?.write(frame(r.correlationId, body));
    await Promise.all(requests);
    c.close();
  });

  it('reports a refused connection as retriable', async () => {
    const broker = await fakeBroker(() => undefined);
    broker.server.close();
    await once(broker.server, 'close');
    const c = connection(broker.port);
    await assert.rejects(
      c.connect(),
      (error: unknown) => error instanceof ConnectionError && error.retriable,
    );
  });
});

describe('kafka client config', () => {
  const binding = (type: string, options: Record<string, unknown>, exit?: string): BindingConfig => ({
    name: type,
    type,
    kind: 'client',
    options,
    routes: [],
    ...(exit === undefined ? {} : { exit }),
  });

  it('reads servers, sasl and the Zilla 2.x authorization form', () => {
    assert.deepEqual(parseServers(['a:1, b:2', 'c:3']), ['a:1', 'b:2', 'c:3']);
    assert.deepEqual(parseSasl({ sasl: { mechanism: 'scram-sha-256', username: 'u', password: 'p' } }), {
      mechanism: 'SCRAM-SHA-256',
      username: 'u',
      password: 'p',
    });
    assert.deepEqual(
      parseSasl({ authorization: { guard: { credentials: { username: 'u', password: 'p' } } } }),
      {
        mechanism: 'PLAIN',
        username: 'u',
        password: 'p',
      },
    );
    assert.throws(
      () => parseSasl({ sasl: { mechanism: 'gssapi', username: 'u', password: 'p' } }),
      /unsupported SASL mechanism/,
    );
  });

  it('follows tls and tcp exits', () => {
    const configs = new Map([
      ['tls0', binding('tls', { sni: ['kafka.example'] }, 'tcp0')],
      ['tcp0', binding('tcp', { host: 'proxy', port: 9093 })],
    ]);
    const transport = resolveTransport(['a:1'], 'tls0', (name) => configs.get(name));
    assert.deepEqual(transport.servers, ['proxy:9093']);
    assert.equal(transport.tls?.servername, 'kafka.example');
    assert.equal(transport.tls?.rejectUnauthorized, true);
    assert.throws(() => resolveTransport([], undefined, () => undefined), /no Kafka servers/);
  });

  it('backs off exponentially with jitter, capped', () => {
    const options = { initialMs: 100, maxMs: 1000 };
    assert.equal(
      backoffDelay(0, options, () => 0),
      50,
    );
    assert.equal(
      backoffDelay(0, options, () => 1),
      100,
    );
    assert.equal(
      backoffDelay(3, options, () => 1),
      800,
    );
    assert.equal(
      backoffDelay(40, options, () => 1),
      1000,
    );
  });
});
