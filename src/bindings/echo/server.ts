import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { BindingConfig } from '../../config/index.ts';
import type { Binding, BindingContext } from '../../engine/binding.ts';
import type {
  ConnectionHandler,
  ConnectionInfo,
  HttpHandler,
  HttpRouteMatch,
  StreamHandler,
} from '../north.ts';
import { echoServerOptions } from './options.ts';

/**
 * Request headers an echoed HTTP response leaves out: they describe the request's connection and
 * framing, which the response has its own of (and HTTP/2 forbids sending).
 */
const NOT_ECHOED = new Set([
  'host',
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'content-length',
  'upgrade',
  'te',
  'trailer',
  'expect',
  'http2-settings',
]);

/** Resolves once `res` takes more, or has closed. */
function writable(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/**
 * The `echo server` binding, as Zilla's: every byte a stream brings is sent back on it, as it
 * comes, until the other side ends. After a `tcp` or `tls` server it echoes the connection; after
 * an `http` server it answers each request 200 with the request's headers and body; after a `fan`
 * server it sends what any of its clients wrote back to all of them.
 */
export class EchoServerBinding implements Binding, ConnectionHandler, StreamHandler, HttpHandler {
  readonly name: string;
  readonly config: BindingConfig;
  readonly #log: Logger;
  readonly #streams = new Set<Duplex>();
  #draining = false;

  constructor(context: BindingContext) {
    this.config = context.config;
    this.name = context.config.name;
    this.#log = context.logger;
    echoServerOptions(context.config.options);
  }

  async start(_signal: AbortSignal): Promise<void> {
    this.#draining = false;
  }

  acceptConnection(socket: Duplex, info: ConnectionInfo): void {
    this.acceptStream(socket, info);
  }

  acceptStream(stream: Duplex, info: ConnectionInfo): void {
    if (this.#draining) {
      stream.destroy();
      return;
    }
    this.#streams.add(stream);
    stream.on('error', (error) => this.#log.debug({ err: error, ...info }, 'echo stream failed'));
    stream.once('close', () => this.#streams.delete(stream));
    // pipe() waits for the stream to take what it echoed before it reads more, and ends it when
    // the other side does.
    stream.pipe(stream);
  }

  async handleRequest(req: IncomingMessage, res: ServerResponse, match: HttpRouteMatch): Promise<void> {
    const headers: Record<string, string | string[]> = {};
    const raw = req.rawHeaders;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = (raw[i] ?? '').toLowerCase();
      const value = raw[i + 1] ?? '';
      // Headers kgate sets on every response (nosniff) stay as kgate sets them.
      if (name.startsWith(':') || NOT_ECHOED.has(name) || res.hasHeader(name)) continue;
      const previous = headers[name];
      headers[name] =
        previous === undefined ? value : Array.isArray(previous) ? [...previous, value] : [previous, value];
    }
    // The body goes back as long as it came: its length when the request announced one.
    const length = req.headers['content-length'];
    if (length !== undefined) headers['content-length'] = length;
    res.writeHead(200, headers);
    for await (const chunk of match.bodyChunks()) {
      if (res.destroyed) return;
      if (!res.write(chunk)) await writable(res);
    }
    res.end();
  }

  drain(): void {
    this.#draining = true;
    // Ends what is echoed so far; a stream whose other side never ends is destroyed at stop.
    for (const stream of this.#streams) stream.end();
  }

  async stop(_signal: AbortSignal): Promise<void> {
    this.drain();
    for (const stream of this.#streams) stream.destroy();
    this.#streams.clear();
  }
}

export function createEchoServerBinding(context: BindingContext): Binding {
  return new EchoServerBinding(context);
}
