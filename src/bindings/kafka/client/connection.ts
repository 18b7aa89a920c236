import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import {
  AuthenticationError,
  ConnectionError,
  KafkaClientError,
  KafkaProtocolError,
  MalformedResponseError,
  messageOf,
  TlsError,
  UnsupportedVersionError,
} from './errors.ts';
import {
  Api,
  type ApiSpec,
  bodyBuffers,
  hasTaggedResponseHeader,
  isFlexible,
  negotiateVersions,
  type VersionedApi,
} from './apis/index.ts';
import { correlationIdOf, FrameDecoder, requestHeader, responseBody } from './protocol/frames.ts';
import type { Cursor } from './protocol/reader.ts';
import { authenticate, failedMessage, type SaslConfig } from './sasl.ts';

export interface ConnectionObserver {
  requestStarted(api: string): void;
  requestFinished(api: string, seconds: number, outcome: 'ok' | 'error'): void;
}

export interface ConnectionConfig {
  readonly host: string;
  readonly port: number;
  readonly clientId: string;
  readonly tls?: TlsConnectionOptions;
  readonly sasl?: SaslConfig;
  readonly connectTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly maxInFlight: number;
  readonly maxFrameBytes: number;
  readonly observer?: ConnectionObserver;
}

export interface RequestOptions {
  /** Added to the request timeout, for requests the broker may hold (Fetch max wait). */
  readonly extraTimeoutMs?: number;
  /** acks=0 Produce: the broker sends nothing back. */
  readonly noResponse?: boolean;
  /** Highest version to use even if both sides know a newer one (Fetch without topic ids). */
  readonly maxVersion?: number;
  /**
   * Called once the request is written to the socket. A request that fails without it was never
   * seen by the broker (refused on a closed connection, or still queued when the connection
   * closed); one that fails after it may have been acted on.
   */
  readonly onWritten?: () => void;
}

interface Pending {
  readonly spec: ApiSpec;
  readonly version: number;
  readonly body: readonly Buffer[];
  readonly decode: (body: Cursor) => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
  readonly options: RequestOptions | undefined;
  correlationId: number;
  started: number;
  timer: NodeJS.Timeout | undefined;
}

const TLS_TRUST_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

const CLIENT_SOFTWARE_NAME = 'kgate';
const CLIENT_SOFTWARE_VERSION = '0.1.0';

/**
 * One TCP (or TLS) connection to one broker. Requests are pipelined with correlation ids up to
 * `maxInFlight`; the rest wait in order. ApiVersions is always the first request, then SASL, and
 * the versions it negotiated are used for every later request. Any bytes that do not decode close
 * the connection: after a framing error nothing later on the stream can be trusted.
 */
export class BrokerConnection {
  readonly config: ConnectionConfig;
  readonly address: string;
  #socket: Socket | undefined;
  #versions = new Map<number, number>();
  #correlationId = 0;
  readonly #inFlight = new Map<number, Pending>();
  readonly #waiting: Pending[] = [];
  #closedWith: Error | undefined;
  readonly #closeListeners: ((error: Error, pending: number) => void)[] = [];
  #othersPending = 0;
  #othersActiveAt = 0;
  readonly #decoder: FrameDecoder;

  constructor(config: ConnectionConfig) {
    this.config = config;
    this.address = `${config.host}:${config.port}`;
    this.#decoder = new FrameDecoder(config.maxFrameBytes, (frame) => this.#onFrame(frame));
  }

  get closed(): boolean {
    return this.#closedWith !== undefined;
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  /**
   * Called once when the connection closes, with the reason and how many requests it failed (0
   * for a connection closed while idle, which a broker does to connections it sees unused).
   */
  onClose(listener: (error: Error, pending: number) => void): void {
    if (this.#closedWith !== undefined) listener(this.#closedWith, 0);
    else this.#closeListeners.push(listener);
  }

  /** The version negotiated for `spec`; throws when broker and client share none. */
  version(spec: ApiSpec): number {
    const version = this.#versions.get(spec.key);
    if (version === undefined) {
      throw new UnsupportedVersionError(
        `broker ${this.address} supports no ${spec.name} version in ${spec.min}..${spec.max}`,
      );
    }
    return version;
  }

  async connect(): Promise<void> {
    this.#socket = await this.#open();
    const socket = this.#socket;
    socket.on('data', (chunk: Buffer) => {
      try {
        this.#decoder.push(chunk);
      } catch (error) {
        this.fail(error instanceof KafkaClientError ? error : new MalformedResponseError(messageOf(error)));
      }
    });
    socket.on('error', (error) =>
      this.fail(
        new ConnectionError(`connection to ${this.address} failed: ${error.message}`, { cause: error }),
      ),
    );
    socket.on('close', () => this.fail(new ConnectionError(`connection to ${this.address} closed`)));
    try {
      await this.#negotiateVersions();
      if (this.config.sasl !== undefined) await this.#authenticate(this.config.sasl);
    } catch (error) {
      const failure = this.#duringHandshake(error);
      this.fail(failure);
      throw failure;
    }
  }

  /** Sends `request` in the negotiated version of `api`, encoded and decoded by that version's codec. */
  request<Request, Response>(
    api: VersionedApi<Request, Response>,
    request: Request,
    options?: RequestOptions,
  ): Promise<Response> {
    if (this.#closedWith !== undefined) return Promise.reject(this.#closedWith);
    let version: number;
    let body: readonly Buffer[];
    let decode: (body: Cursor) => Response;
    try {
      version = this.version(api);
      if (options?.maxVersion !== undefined && options.maxVersion < version) {
        if (options.maxVersion < api.min)
          throw new UnsupportedVersionError(`${api.name} v${options.maxVersion} is too old`);
        version = options.maxVersion;
      }
      const codec = api.codec(version);
      body = bodyBuffers(codec.encode(request));
      decode = codec.decode;
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    if (api === Api.Fetch) return this.#enqueue(api, version, body, decode, options);
    this.#othersPending++;
    this.#othersActiveAt = Date.now();
    const answered = this.#enqueue(api, version, body, decode, options);
    const settled = (): void => {
      this.#othersPending--;
      this.#othersActiveAt = Date.now();
    };
    answered.then(settled, settled);
    return answered;
  }

  /**
   * Requests other than Fetch awaiting their answer on this connection. A broker answers a
   * connection's requests in order, so these are what a Fetch held at the broker delays.
   */
  get othersPending(): number {
    return this.#othersPending;
  }

  /** `Date.now()` when a request other than Fetch was last sent or answered here; 0 if never. */
  get othersActiveAt(): number {
    return this.#othersActiveAt;
  }

  /** Like `request` but with an explicit version (the handshake, before versions are known). */
  #handshake<Request, Response>(
    api: VersionedApi<Request, Response>,
    version: number,
    request: Request,
  ): Promise<Response> {
    const codec = api.codec(version);
    return this.#enqueue(api, version, bodyBuffers(codec.encode(request)), codec.decode, undefined);
  }

  #enqueue<T>(
    spec: ApiSpec,
    version: number,
    body: readonly Buffer[],
    decode: (body: Cursor) => T,
    options: RequestOptions | undefined,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const pending: Pending = {
        spec,
        version,
        body,
        decode,
        resolve: resolve as (value: unknown) => void,
        reject,
        options,
        correlationId: 0,
        started: 0,
        timer: undefined,
      };
      if (this.#inFlight.size >= this.config.maxInFlight) this.#waiting.push(pending);
      else this.#send(pending);
    });
  }

  close(): void {
    this.fail(new ConnectionError(`connection to ${this.address} closed by client`));
  }

  /** Closes the connection and fails everything on it. Safe to call repeatedly. */
  fail(error: Error): void {
    if (this.#closedWith !== undefined) return;
    this.#closedWith = error;
    this.#socket?.destroy();
    const failed = this.#inFlight.size + this.#waiting.length;
    for (const pending of this.#inFlight.values()) this.#settle(pending, error);
    this.#inFlight.clear();
    for (const pending of this.#waiting.splice(0)) pending.reject(error);
    for (const listener of this.#closeListeners.splice(0)) listener(error, failed);
  }

  #send(pending: Pending): void {
    const socket = this.#socket;
    if (socket === undefined || this.#closedWith !== undefined) {
      pending.reject(this.#closedWith ?? new ConnectionError(`connection to ${this.address} is not open`));
      return;
    }
    this.#correlationId = (this.#correlationId + 1) & 0x7fffffff;
    pending.correlationId = this.#correlationId;
    let bodyLength = 0;
    for (const buffer of pending.body) bodyLength += buffer.length;
    const header = requestHeader(
      pending.spec.key,
      pending.version,
      pending.correlationId,
      this.config.clientId,
      isFlexible(pending.spec, pending.version),
      bodyLength,
    );
    socket.cork();
    socket.write(header);
    for (const buffer of pending.body) if (buffer.length > 0) socket.write(buffer);
    socket.uncork();
    pending.options?.onWritten?.();
    pending.started = performance.now();
    this.config.observer?.requestStarted(pending.spec.name);
    if (pending.options?.noResponse === true) {
      this.config.observer?.requestFinished(pending.spec.name, 0, 'ok');
      pending.resolve(undefined);
      return;
    }
    this.#inFlight.set(pending.correlationId, pending);
    const timeout = this.config.requestTimeoutMs + (pending.options?.extraTimeoutMs ?? 0);
    pending.timer = setTimeout(() => {
      this.fail(
        new ConnectionError(`${pending.spec.name} request to ${this.address} timed out after ${timeout} ms`),
      );
    }, timeout);
  }

  #onFrame(frame: Buffer): void {
    const correlationId = correlationIdOf(frame);
    const pending = this.#inFlight.get(correlationId);
    if (pending === undefined) {
      throw new MalformedResponseError(
        `broker ${this.address} answered unknown correlation id ${correlationId}`,
      );
    }
    this.#inFlight.delete(correlationId);
    let value: unknown;
    try {
      value = pending.decode(responseBody(frame, hasTaggedResponseHeader(pending.spec, pending.version)));
    } catch (error) {
      const failure =
        error instanceof KafkaClientError && !(error instanceof MalformedResponseError)
          ? error
          : new MalformedResponseError(
              `malformed ${pending.spec.name} v${pending.version} response from ${this.address}: ${messageOf(error)}`,
              { cause: error },
            );
      this.#settle(pending, failure);
      if (failure instanceof MalformedResponseError) this.fail(failure);
      this.#pump();
      return;
    }
    this.#settle(pending, undefined, value);
    this.#pump();
  }

  #settle(pending: Pending, error: Error | undefined, value?: unknown): void {
    clearTimeout(pending.timer);
    this.config.observer?.requestFinished(
      pending.spec.name,
      (performance.now() - pending.started) / 1000,
      error === undefined ? 'ok' : 'error',
    );
    if (error === undefined) pending.resolve(value);
    else pending.reject(error);
  }

  #pump(): void {
    while (this.#inFlight.size < this.config.maxInFlight && this.#closedWith === undefined) {
      const next = this.#waiting.shift();
      if (next === undefined) return;
      this.#send(next);
    }
  }

  #open(): Promise<Socket> {
    const { host, port, tls, connectTimeoutMs } = this.config;
    return new Promise<Socket>((resolve, reject) => {
      const socket: Socket =
        tls === undefined ? netConnect({ host, port }) : tlsConnect({ host, port, ...tls });
      socket.setNoDelay(true);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new ConnectionError(`connection to ${this.address} timed out after ${connectTimeoutMs} ms`));
      }, connectTimeoutMs);
      const onError = (error: NodeJS.ErrnoException): void => {
        clearTimeout(timer);
        socket.destroy();
        reject(this.#connectError(error));
      };
      socket.once('error', onError);
      socket.once(tls === undefined ? 'connect' : 'secureConnect', () => {
        clearTimeout(timer);
        socket.removeListener('error', onError);
        resolve(socket);
      });
    });
  }

  #connectError(error: NodeJS.ErrnoException): Error {
    const code = error.code ?? '';
    if (
      this.config.tls !== undefined &&
      (TLS_TRUST_CODES.has(code) || code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS'))
    ) {
      return new TlsError(
        `TLS handshake with broker ${this.address} failed: certificate not trusted (${code}: ${error.message})`,
        { cause: error },
      );
    }
    return new ConnectionError(`connection to ${this.address} failed: ${error.message}`, { cause: error });
  }

  #duringHandshake(error: unknown): Error {
    if (error instanceof KafkaClientError) return error;
    return new ConnectionError(`handshake with ${this.address} failed: ${messageOf(error)}`, {
      cause: error,
    });
  }

  async #negotiateVersions(): Promise<void> {
    const spec = Api.ApiVersions;
    let version: number = spec.max;
    for (let attempt = 0; attempt < 2; attempt++) {
      const response = await this.#handshake(spec, version, {
        softwareName: CLIENT_SOFTWARE_NAME,
        softwareVersion: CLIENT_SOFTWARE_VERSION,
      });
      if (response.errorCode === 0) {
        this.#versions = negotiateVersions(response.apiKeys);
        this.version(Api.Metadata);
        return;
      }
      // UNSUPPORTED_VERSION: the broker answered in v0 with its own range; retry within it.
      const own = response.apiKeys.find((range) => range.apiKey === spec.key);
      if (response.errorCode !== 35 || own === undefined) break;
      version = Math.min(own.maxVersion, spec.max);
    }
    throw new UnsupportedVersionError(`broker ${this.address} rejected every ApiVersions version`);
  }

  async #authenticate(sasl: SaslConfig): Promise<void> {
    const handshake = await this.#handshake(
      Api.SaslHandshake,
      this.version(Api.SaslHandshake),
      sasl.mechanism,
    );
    if (handshake.errorCode !== 0) {
      throw new AuthenticationError(
        `SASL mechanism ${sasl.mechanism} is not enabled on broker ${this.address} (enabled: ${handshake.mechanisms.join(', ') || 'none'})`,
      );
    }
    const authVersion = this.version(Api.SaslAuthenticate);
    await authenticate(sasl, async (authBytes) => {
      const response = await this.#handshake(Api.SaslAuthenticate, authVersion, authBytes);
      if (response.errorCode !== 0) {
        // The broker's text says which check failed; the message stays fixed so it can be matched.
        throw new AuthenticationError(failedMessage(sasl), {
          cause: new KafkaProtocolError(response.errorCode, 'SaslAuthenticate', response.errorMessage),
        });
      }
      return response.authBytes;
    });
  }
}
