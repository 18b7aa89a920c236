import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { BindingConfig, LoadedConfig } from '../../src/config/index.ts';
import type { Binding, BindingContext } from '../../src/engine/binding.ts';
import { Engine } from '../../src/engine/engine.ts';
import { BindingRegistry } from '../../src/engine/registry.ts';
import { HttpServerBinding, type HttpServerLimits } from '../../src/bindings/http/server.ts';
import { SseServerBinding, type SseServerTuning } from '../../src/bindings/sse/server.ts';
import { createTcpServerBinding, type TcpServerBinding } from '../../src/bindings/tcp/server.ts';
import { createTlsServerBinding } from '../../src/bindings/tls/server.ts';

/** Shared by the north-side tests: runs a chain of bindings through the real engine. */

export interface ChainOptions {
  readonly http?: HttpServerLimits;
  readonly sse?: SseServerTuning;
  /** Bindings of type `test`, by name: handlers standing in for the proxies. */
  readonly handlers?: Record<string, object>;
}

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface Chain {
  readonly engine: Engine;
  readonly logs: LogLine[];
  binding<T extends Binding>(name: string): T;
  /** The first port the named tcp server listens on. */
  port(name?: string): number;
  stop(drainMs?: number): Promise<void>;
}

export function bindingConfig(
  name: string,
  type: string,
  kind: string,
  options: Record<string, unknown> = {},
  exit?: string,
  routes: BindingConfig['routes'] = [],
): BindingConfig {
  return { name, type, kind, options, routes, ...(exit === undefined ? {} : { exit }) };
}

export async function startChain(bindings: BindingConfig[], options: ChainOptions = {}): Promise<Chain> {
  const logs: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n'))
        if (line !== '') logs.push(JSON.parse(line) as LogLine);
      callback();
    },
  });
  const registry = new BindingRegistry()
    .register('tcp', 'server', createTcpServerBinding)
    .register('tls', 'server', createTlsServerBinding)
    .register('http', 'server', (ctx) => new HttpServerBinding(ctx, options.http))
    .register('sse', 'server', (ctx) => new SseServerBinding(ctx, options.sse));
  for (const [name, handler] of Object.entries(options.handlers ?? {})) {
    registry.register('test', name, (ctx: BindingContext): Binding =>
      Object.assign(handler, {
        name: ctx.config.name,
        config: ctx.config,
        start: async () => {},
        stop: async () => {},
      }),
    );
  }
  const config: LoadedConfig = {
    file: 'test.yaml',
    name: 'test',
    bindings: new Map(bindings.map((b) => [b.name, b])),
    warnings: [],
  };
  const engine = new Engine(config, registry, {
    logger: pino({ level: 'debug' }, sink),
    stateDir: '/nonexistent',
    startTimeoutMs: 10_000,
  });
  await engine.start();
  const binding = <T extends Binding>(name: string): T => {
    const found = engine.binding(name);
    if (found === undefined) throw new Error(`no binding ${name}`);
    return found as T;
  };
  return {
    engine,
    logs,
    binding,
    port(name = 'tcp'): number {
      const tcp = binding<TcpServerBinding>(name);
      const port = tcp.ports[0];
      if (port === undefined) throw new Error(`${name} listens on no port`);
      return port;
    },
    stop: (drainMs = 2_000) => engine.stop(drainMs),
  };
}

/** A handler binding config of type `test` named after its kind. */
export function handlerConfig(name: string): BindingConfig {
  return bindingConfig(name, 'test', name);
}
