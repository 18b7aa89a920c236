import { createServer, type Server, type Socket } from 'node:net';

/** On a final close, a listener stays open until no connection arrived for this long, at most the max. */
const ACCEPT_QUIET_MS = 50;
const ACCEPT_QUIET_MAX_MS = 1_000;

/** Connections a released listener holds for its successor, when the binding gives no backlog. */
const DEFAULT_PARKED_MAX = 511;

export interface ListenRequest {
  /** The binding asking, named in errors; with port 0, also what the socket is kept for. */
  readonly owner: string;
  readonly host: string;
  /** 0: a port the system picks, kept for the same owner across its restarts. */
  readonly port: number;
  /** Pending connections the kernel queues; also how many a held listener keeps waiting. */
  readonly backlog?: number;
  /** SO_REUSEPORT, for listeners shared with worker threads. */
  readonly reusePort: boolean;
}

export interface Listener {
  /** The port listened on: for port 0, the one the system chose. */
  readonly port: number;
  /**
   * Stops handing connections to this listener's handler. During a reload the socket stays
   * listening, connections wait for a successor that asks for the same host and port, and the
   * reload closes it if none does; otherwise it closes once no connection arrived for 50 ms, so
   * connections the kernel already completed are handed over rather than reset.
   */
  release(): Promise<void>;
}

export interface ListenerHandlers {
  /** Each accepted connection, the handler's to read, write and end from here. */
  connection(socket: Socket): void;
  /** The listening socket failed after it listened (EMFILE on accept, say). */
  error(error: Error): void;
}

/** Listening sockets for the bindings of one engine, kept open across a reload. */
export interface Listeners {
  /** Listens, or takes over the socket a binding stopped by this reload released. */
  listen(request: ListenRequest, handlers: ListenerHandlers): Promise<Listener>;
}

interface Entry {
  readonly key: string;
  readonly request: ListenRequest;
  readonly server: Server;
  readonly port: number;
  owner: string;
  handlers: ListenerHandlers | undefined;
  /** Arrived while no binding held the socket, in order. */
  readonly parked: Set<Socket>;
  accepted: number;
}

function keyOf(host: string, port: number): string {
  return `${host.toLowerCase()}|${port}`;
}

function listen(server: Server, request: ListenRequest): Promise<number> {
  const { host, port, backlog, reusePort } = request;
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

function ignore(): void {
  // A parked connection's reset is nobody's concern but its own.
}

/**
 * The engine's listening sockets. A tcp server that a reload restarts (because it changed, or
 * because something behind it did) would otherwise close its socket and leave the port refusing
 * connections until the chain behind it is up again; here the socket outlives the binding: while
 * the engine holds its listeners (`hold()`), a released socket keeps listening and the
 * connections that arrive wait, accepted but unread, for the binding that asks for the same host
 * and port next. At `settle()`, sockets nobody took over are closed.
 */
export class ListenerPool implements Listeners {
  /** By host and the port listened on. */
  readonly #entries = new Map<string, Entry>();
  /** For a listener asked on port 0: the key of the one its owner got, by owner and host. */
  readonly #chosen = new Map<string, string>();
  #holding = false;

  async listen(request: ListenRequest, handlers: ListenerHandlers): Promise<Listener> {
    const chosenKey = `${request.owner}|${keyOf(request.host, 0)}`;
    const key = request.port === 0 ? (this.#chosen.get(chosenKey) ?? '') : keyOf(request.host, request.port);
    const existing = this.#entries.get(key);
    if (existing !== undefined && existing.handlers !== undefined)
      throw new Error(`port ${request.port} is already in use by binding ${existing.owner}`);
    if (existing !== undefined && this.#reusable(existing.request, request)) {
      this.#adopt(existing, request.owner, handlers);
      return this.#listener(existing);
    }
    // Its queue or SO_REUSEPORT cannot change on a listening socket: this one listens anew.
    if (existing !== undefined) this.#close(existing);
    const server = createServer();
    const port = await listen(server, request);
    const entry: Entry = {
      key: keyOf(request.host, port),
      request,
      server,
      port,
      owner: request.owner,
      handlers,
      parked: new Set(),
      accepted: 0,
    };
    server.on('connection', (socket) => this.#arrived(entry, socket));
    server.on('error', (error) => entry.handlers?.error(error));
    this.#entries.set(entry.key, entry);
    if (request.port === 0) this.#chosen.set(chosenKey, entry.key);
    return this.#listener(entry);
  }

  /** From now on, released sockets stay open for a successor (a reload is under way). */
  hold(): void {
    this.#holding = true;
  }

  /** Ends a hold: closes the sockets no binding took over, resetting what waited on them. */
  settle(): void {
    this.#holding = false;
    for (const entry of [...this.#entries.values()]) if (entry.handlers === undefined) this.#close(entry);
  }

  #reusable(held: ListenRequest, wanted: ListenRequest): boolean {
    return held.backlog === wanted.backlog && held.reusePort === wanted.reusePort;
  }

  #arrived(entry: Entry, socket: Socket): void {
    entry.accepted++;
    if (entry.handlers !== undefined) {
      entry.handlers.connection(socket);
      return;
    }
    // Past what the kernel would have queued for a closed accept loop, refuse as it would have.
    if (entry.parked.size >= (entry.request.backlog ?? DEFAULT_PARKED_MAX)) {
      socket.destroy();
      return;
    }
    entry.parked.add(socket);
    socket.on('error', ignore);
    socket.once('close', () => entry.parked.delete(socket));
  }

  #adopt(entry: Entry, owner: string, handlers: ListenerHandlers): void {
    entry.owner = owner;
    entry.handlers = handlers;
    const waiting = [...entry.parked];
    entry.parked.clear();
    for (const socket of waiting) {
      socket.off('error', ignore);
      if (!socket.destroyed) handlers.connection(socket);
    }
  }

  #listener(entry: Entry): Listener {
    let released = false;
    return {
      port: entry.port,
      release: async () => {
        if (released) return;
        released = true;
        if (this.#holding) {
          entry.handlers = undefined;
          return;
        }
        // Closing resets connections the kernel completed but this process has not accepted
        // yet, whose requests may already be sent: accept until a short quiet spell.
        const quietBy = Date.now() + ACCEPT_QUIET_MAX_MS;
        let accepted = -1;
        while (accepted !== entry.accepted && Date.now() < quietBy) {
          accepted = entry.accepted;
          await new Promise((resolve) => setTimeout(resolve, ACCEPT_QUIET_MS));
        }
        entry.handlers = undefined;
        // A hold may have begun during the quiet spell: then the socket waits for a successor.
        if (!this.#holding) this.#close(entry);
      },
    };
  }

  #close(entry: Entry): void {
    if (this.#entries.get(entry.key) === entry) this.#entries.delete(entry.key);
    for (const [chosen, key] of this.#chosen) if (key === entry.key) this.#chosen.delete(chosen);
    // Stops listening at once; connections already handed over are their handlers' to end.
    entry.server.close();
    for (const socket of entry.parked) socket.destroy();
    entry.parked.clear();
  }
}
