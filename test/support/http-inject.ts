import { createServer, request, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { duplexPair } from 'node:stream';
import { readBodyChunks, type BodyTimeouts } from '../../src/bindings/http/body.ts';
import { sendError } from '../../src/bindings/http/server.ts';
import { HttpError, type HttpHandler, type HttpRouteMatch } from '../../src/bindings/north.ts';

// Requests injected into an HttpHandler without a listener: node:http's own server and client
// talk over an in-memory socket pair, so the handler gets real IncomingMessage and ServerResponse
// objects and the test sees the bytes that would go out, with no port and no broker.

export interface InjectRequest {
  readonly method?: string;
  readonly path: string;
  readonly headers?: OutgoingHttpHeaders;
  /** Sent whole; `partial` sends only this much of the announced body and waits for the answer. */
  readonly body?: string | Buffer;
  readonly partial?: boolean;
}

export interface InjectResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  readonly text: string;
}

export interface Injector {
  inject(request: InjectRequest): Promise<InjectResponse>;
  close(): void;
}

/**
 * Answers each request with `handler`, and a thrown error as the http server binding does: an
 * HttpError with its status and JSON body, anything else with 500, unless a response is under way.
 * Bodies are read with the server's body timeouts, `timeouts` here.
 */
export function injector(handler: HttpHandler, timeouts: BodyTimeouts = { idleMs: 30_000 }): Injector {
  const server = createServer((req, res) => {
    const match: HttpRouteMatch = {
      params: {},
      readBody: () => Promise.reject(new Error('the handler reads its body itself')),
      bodyChunks: (maxBytes, pressure) =>
        readBodyChunks(
          req,
          timeouts,
          maxBytes,
          () => {
            res.shouldKeepAlive = false;
          },
          pressure,
        ),
      connection: req.socket,
    };
    const fail = (error: unknown): void => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const message = error instanceof Error ? error.message : String(error);
      if (error instanceof HttpError) sendError(res, error.status, message);
      else sendError(res, 500, `request failed: ${message}`);
    };
    try {
      const result = handler.handleRequest(req, res, match);
      if (result instanceof Promise) result.catch(fail);
    } catch (error) {
      fail(error);
    }
  });
  return {
    inject: (options) =>
      new Promise((resolve, reject) => {
        const [client, side] = duplexPair();
        server.emit('connection', side);
        const req = request({
          method: options.method ?? 'GET',
          path: options.path,
          headers: options.headers ?? {},
          createConnection: () => client,
        });
        req.on('error', reject);
        req.on('response', (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => {
            const body = Buffer.concat(chunks);
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8') });
            client.destroy();
          });
        });
        if (options.partial === true) req.write(options.body ?? '');
        else req.end(options.body);
      }),
    close: () => server.close(),
  };
}
