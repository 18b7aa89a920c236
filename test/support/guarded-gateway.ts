import { request, type IncomingHttpHeaders } from 'node:http';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { createHttpServerBinding } from '../../src/bindings/http/server.ts';
import { createFilesystemServerBinding } from '../../src/bindings/filesystem/server.ts';
import { createHttpFilesystemProxyBinding } from '../../src/bindings/http-filesystem/proxy.ts';
import { createHttpKafkaProxyBinding } from '../../src/bindings/http-kafka/proxy.ts';
import { createSseKafkaProxyBinding } from '../../src/bindings/sse-kafka/proxy.ts';
import { createSseServerBinding } from '../../src/bindings/sse/server.ts';
import { createTcpServerBinding } from '../../src/bindings/tcp/server.ts';
import { parseConfig } from '../../src/config/index.ts';
import type { BindingFactory } from '../../src/engine/binding.ts';
import { Engine } from '../../src/engine/engine.ts';
import { BindingRegistry } from '../../src/engine/registry.ts';
import { EventStreamParser, type SseMessage } from './event-stream.ts';
import { FakeCacheServer, fakeCacheClient, type FakeTopic } from './fake-cache.ts';
import { reservePort } from './ports.ts';

/**
 * The north-side bindings as `kgate start` builds them from a config (tcp, http, sse, sse-kafka,
 * http-kafka, guards and all), in this process, over a fake cache holding `topics`: for tests of
 * guarded routes that need no broker. Every log line is kept, to check what reaches logs.
 */
export interface GuardedGateway {
  readonly port: number;
  readonly cache: FakeCacheServer;
  readonly logs: string[];
  stop(): Promise<void>;
}

const idle: BindingFactory = (ctx) => ({
  name: ctx.config.name,
  start: () => Promise.resolve(),
  stop: () => Promise.resolve(),
});

export async function startGuardedGateway(
  yaml: (port: number) => string,
  topics: readonly FakeTopic[],
  options: { readonly keepLogs?: boolean } = {},
): Promise<GuardedGateway> {
  const port = await reservePort();
  const config = parseConfig(yaml(port), 'guarded.yaml', {});
  const cache = new FakeCacheServer(...topics);
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs.push(chunk.toString('utf8'));
      done();
    },
  });
  // A long run keeps no lines: they would be what grows, not the gateway.
  const logger = options.keepLogs === false ? pino({ level: 'silent' }) : pino({ level: 'debug' }, sink);
  const registry = new BindingRegistry()
    .register('tcp', 'server', createTcpServerBinding)
    .register('http', 'server', createHttpServerBinding)
    .register('sse', 'server', createSseServerBinding)
    .register('sse-kafka', 'proxy', createSseKafkaProxyBinding)
    .register('http-kafka', 'proxy', createHttpKafkaProxyBinding)
    .register('http-filesystem', 'proxy', createHttpFilesystemProxyBinding)
    .register('filesystem', 'server', createFilesystemServerBinding)
    .register('kafka', 'cache_client', (ctx) => fakeCacheClient(ctx.config.name, cache))
    // The fake cache stands in for the chain behind the cache_client.
    .register('kafka', 'cache_server', idle)
    .register('kafka', 'client', idle);
  const engine = new Engine(config, registry, { logger, stateDir: '/nonexistent' });
  await engine.start();
  return { port, cache, logs, stop: () => engine.stop(2_000) };
}

export interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** One request on a fresh connection, its answer read whole. */
export function send(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString(),
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${path}: no answer in 10 s`)));
    req.end(body);
  });
}

export interface OpenStream {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly events: SseMessage[];
  /** Resolves once the server ended the stream. */
  readonly ended: Promise<void>;
  close(): void;
}

/** Opens an event stream; a non-200 answer is given with its status and no events. */
export function stream(
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<OpenStream> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, headers: { accept: 'text/event-stream', ...headers }, agent: false },
      (res) => {
        const events: SseMessage[] = [];
        const parser = new EventStreamParser();
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => events.push(...parser.push(chunk)));
        const ended = new Promise<void>((done) => res.once('close', done));
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          events,
          ended,
          close: () => req.destroy(),
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}
