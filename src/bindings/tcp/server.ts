import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { BindingConfig, PortSpec, RouteTable } from '../../config/index.ts';
import type { Binding, BindingContext } from '../../engine/binding.ts';
import { ListenerPool, type Listener, type Listeners } from '../../engine/listeners.ts';
import { connectionRoutes, type ConnectionCondition } from '../connection-conditions.ts';
import { tcpServerOptions, type TcpServerOptions } from './options.ts';
import {
  isConnectionHandler,
  lookupExits,
  normalizeAddress,
  type ConnectionHandler,
  type ConnectionInfo,
} from '../north.ts';
import { createTcpServerMetrics, type TcpServerMetrics } from './metrics.ts';

/** Expands `7114`, `"8080-8089"` or a list of either into port numbers, in order, without repeats. */
export function parsePorts(spec: PortSpec): number[] {
  const ports: number[] = [];
  const add = (item: unknown): void => {
    if (typeof item === 'number' && Number.isInteger(item)) ports.push(item);
    else if (typeof item === 'string') {
      const match = /^(\d+)(?:-(\d+))?$/.exec(item.trim());
      if (!match) throw new Error(`port ${JSON.stringify(item)} is not a number or a range like "8080-8089"`);
      const from = Number(match[1]);
      const to = match[2] === undefined ? from : Number(match[2]);
      if (to < from) throw new Error(`port range ${item} is empty`);
      if (to > 65535) throw new Error(`port range ${item} goes past 65535`);
      for (let port = from; port <= to; port++) ports.push(port);
    } else if (Array.isArray(item)) item.forEach(add);
    else throw new Error(`port ${JSON.stringify(item)} is not a number or a range like "8080-8089"`);
  };
  add(spec);
  if (ports.length === 0) throw new Error('no port to listen on');
  return [...new Set(ports)];
}

/**
 * The `tcp server` binding: listens on one or more ports and hands each accepted connection to the
 * exit its routes choose (by local `port` and remote `cidr`).
 */
export class TcpServerBinding implements Binding {
  readonly name: string;
  readonly config: BindingConfig;
  readonly #context: BindingContext;
  readonly #log: Logger;
  readonly #options: TcpServerOptions;
  readonly #routes: RouteTable<ConnectionInfo, ConnectionCondition>;
  /** The engine's, so that a reload restarting this binding never closes its ports. */
  readonly #pool: Listeners;
  #listeners: Listener[] = [];
  /** Open connections, by the exit that took them. */
  readonly #sockets = new Map<Socket, string>();
  #exits = new Map<string, ConnectionHandler>();
  #ports: number[] = [];
  #metrics: TcpServerMetrics | undefined;

  constructor(context: BindingContext) {
    this.#context = context;
    this.config = context.config;
    this.name = context.config.name;
    this.#log = context.logger;
    this.#options = tcpServerOptions(context.config.options);
    this.#routes = connectionRoutes(context.config);
    this.#pool = context.listeners ?? new ListenerPool();
  }

  /** The ports actually listened on, in config order; port 0 shows as the port the system chose. */
  get ports(): readonly number[] {
    return this.#ports;
  }

  async start(_signal: AbortSignal): Promise<void> {
    const { host, backlog } = this.#options;
    const ports = parsePorts(this.#options.port);
    const reusePort = this.#context.sharedListeners === true;
    if (reusePort && ports.includes(0))
      throw new Error(
        `options.port 0 would give every worker thread a port of its own; give a fixed port to serve with --workers`,
      );
    this.#exits = lookupExits(this.#context, isConnectionHandler, 'accept connections');
    this.#metrics = createTcpServerMetrics(this.#context.metrics, this.#context.config);
    const handlers = {
      connection: (socket: Socket) => this.#accept(socket),
      error: (error: Error) => this.#log.error({ err: error }, 'listener failed'),
    };
    try {
      for (const port of ports) {
        const request = {
          owner: this.name,
          host,
          port,
          reusePort,
          ...(backlog === undefined ? {} : { backlog }),
        };
        const listener = await this.#pool.listen(request, handlers);
        this.#listeners.push(listener);
        this.#ports.push(listener.port);
      }
    } catch (error) {
      await Promise.all(this.#listeners.map((listener) => listener.release()));
      this.#listeners = [];
      this.#ports = [];
      this.#metrics.close();
      throw error;
    }
    this.#log.info({ host, ports: this.#ports }, 'listening');
  }

  #accept(socket: Socket): void {
    const { nodelay, keepalive } = this.#options;
    socket.setNoDelay(nodelay);
    if (keepalive) socket.setKeepAlive(true);
    const info: ConnectionInfo = {
      localPort: socket.localPort ?? 0,
      remoteAddress: normalizeAddress(socket.remoteAddress),
      remotePort: socket.remotePort ?? 0,
    };
    this.#metrics?.accepted(socket);
    // Whoever takes the socket adds its own handlers; this one keeps a reset from crashing the process.
    socket.on('error', (error) => {
      this.#metrics?.failed();
      this.#log.debug({ err: error, ...info }, 'connection error');
    });
    const resolved = this.#routes.resolve(info);
    const handler = resolved === undefined ? undefined : this.#exits.get(resolved.exit);
    if (resolved === undefined || handler === undefined) {
      this.#log.debug(info, 'no route for connection; closing it');
      socket.destroy();
      return;
    }
    this.#sockets.set(socket, resolved.exit);
    socket.once('close', () => this.#sockets.delete(socket));
    try {
      handler.acceptConnection(socket, info);
    } catch (error) {
      this.#log.error({ err: error, exit: resolved.exit }, 'exit failed to accept a connection');
      socket.destroy();
    }
  }

  /**
   * Stops taking connections (during a reload the ports keep listening for this binding's
   * successor), asks the exits that stop too to wind down, then waits for their connections until
   * `signal` aborts. An exit that keeps running keeps the connections it took.
   */
  async stop(signal: AbortSignal): Promise<void> {
    await Promise.all(this.#listeners.map((listener) => listener.release()));
    this.#listeners = [];
    const stopping = (exit: string): boolean => this.#context.isStopping?.(exit) ?? true;
    for (const [name, exit] of this.#exits) {
      if (!stopping(name)) continue;
      try {
        exit.drain?.();
      } catch (error) {
        this.#log.warn({ err: error }, 'exit failed to drain');
      }
    }
    const draining = (): Socket[] => [...this.#sockets].filter(([, exit]) => stopping(exit)).map(([s]) => s);
    await Promise.race([closed(draining()), aborted(signal)]);
    const left = draining();
    if (left.length > 0) {
      this.#log.info({ connections: left.length }, 'closing connections left at the drain deadline');
    }
    for (const socket of left) socket.destroy();
    this.#sockets.clear();
    this.#metrics?.close();
  }
}

/** Resolves once every one of `sockets` has closed. */
function closed(sockets: readonly Socket[]): Promise<void> {
  return Promise.all(
    sockets.map((socket) =>
      socket.closed ? undefined : new Promise<void>((resolve) => socket.once('close', () => resolve())),
    ),
  ).then(() => undefined);
}

function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

export function createTcpServerBinding(context: BindingContext): Binding {
  return new TcpServerBinding(context);
}
