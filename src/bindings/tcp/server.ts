import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { BindingConfig, PortSpec, RouteTable } from '../../config/index.ts';
import type { Binding, BindingContext } from '../../engine/binding.ts';
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

/** On stop, the listener stays open until no connection arrived for this long, at most the max. */
const ACCEPT_QUIET_MS = 50;
const ACCEPT_QUIET_MAX_MS = 1_000;

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

function listen(
  server: Server,
  host: string,
  port: number,
  backlog: number | undefined,
  reusePort: boolean,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      if (error.code === 'EADDRINUSE') reject(new Error(`port ${port} is already in use`));
      else if (error.code === 'EACCES') reject(new Error(`port ${port} needs privileges this process lacks`));
      else if (error.code === 'EADDRNOTAVAIL') reject(new Error(`address ${host} is not on this machine`));
      else reject(new Error(`cannot listen on ${host}:${port}: ${error.message}`));
    };
    const onListening = (): void => {
      server.off('error', onError);
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : port);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ host, port, reusePort, ...(backlog === undefined ? {} : { backlog }) });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
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
  readonly #servers: Server[] = [];
  readonly #sockets = new Set<Socket>();
  #exits = new Map<string, ConnectionHandler>();
  #ports: number[] = [];
  #accepted = 0;
  #metrics: TcpServerMetrics | undefined;

  constructor(context: BindingContext) {
    this.#context = context;
    this.config = context.config;
    this.name = context.config.name;
    this.#log = context.logger;
    this.#options = tcpServerOptions(context.config.options);
    this.#routes = connectionRoutes(context.config);
  }

  /** The ports actually listened on, in config order; port 0 shows as the port the system chose. */
  get ports(): readonly number[] {
    return this.#ports;
  }

  async start(_signal: AbortSignal): Promise<void> {
    const { host, backlog, nodelay, keepalive } = this.#options;
    const ports = parsePorts(this.#options.port);
    if (this.#context.sharedListeners === true && ports.includes(0))
      throw new Error(
        `options.port 0 would give every worker thread a port of its own; give a fixed port to serve with --workers`,
      );
    this.#exits = lookupExits(this.#context, isConnectionHandler, 'accept connections');
    this.#metrics = createTcpServerMetrics(this.#context.metrics, this.name);
    try {
      for (const port of ports) {
        const server = createServer({ noDelay: nodelay, keepAlive: keepalive });
        server.on('connection', (socket) => this.#accept(socket));
        server.on('error', (error) => this.#log.error({ err: error }, 'listener failed'));
        this.#servers.push(server);
        this.#ports.push(await listen(server, host, port, backlog, this.#context.sharedListeners === true));
      }
    } catch (error) {
      await Promise.all(this.#servers.map(closeServer));
      this.#servers.length = 0;
      this.#ports = [];
      this.#metrics.close();
      throw error;
    }
    this.#log.info({ host, ports: this.#ports }, 'listening');
  }

  #accept(socket: Socket): void {
    this.#accepted++;
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
    if (handler === undefined) {
      this.#log.debug(info, 'no route for connection; closing it');
      socket.destroy();
      return;
    }
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    try {
      handler.acceptConnection(socket, info);
    } catch (error) {
      this.#log.error({ err: error, exit: resolved?.exit }, 'exit failed to accept a connection');
      socket.destroy();
    }
  }

  /** Stops listening, asks the exits to wind down, then waits for connections until `signal` aborts. */
  async stop(signal: AbortSignal): Promise<void> {
    // Closing a listener resets the connections the kernel completed but this process has not
    // accepted yet: requests a client already sent would fail. Accept until a short quiet spell.
    const quietBy = Date.now() + ACCEPT_QUIET_MAX_MS;
    let accepted = -1;
    while (accepted !== this.#accepted && Date.now() < quietBy) {
      accepted = this.#accepted;
      await new Promise((resolve) => setTimeout(resolve, ACCEPT_QUIET_MS));
    }
    const closing = Promise.all(this.#servers.map(closeServer));
    this.#servers.length = 0;
    for (const exit of this.#exits.values()) {
      try {
        exit.drain?.();
      } catch (error) {
        this.#log.warn({ err: error }, 'exit failed to drain');
      }
    }
    // `server.close()` calls back once every accepted connection is gone: that is the drain.
    await Promise.race([closing, aborted(signal)]);
    if (this.#sockets.size > 0) {
      this.#log.info({ connections: this.#sockets.size }, 'closing connections left at the drain deadline');
    }
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
    await closing;
    this.#metrics?.close();
  }
}

function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

export function createTcpServerBinding(context: BindingContext): Binding {
  return new TcpServerBinding(context);
}
