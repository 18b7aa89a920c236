import type { X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import { createSecureContext, TLSSocket, type SecureContext } from 'node:tls';
import type { Logger } from 'pino';
import { compileGlob, type BindingConfig, type Pattern, type RouteTable } from '../../config/index.ts';
import type { Binding, BindingContext } from '../../engine/binding.ts';
import { connectionRoutes, type ConnectionCondition } from '../connection-conditions.ts';
import { isConnectionHandler, lookupExits, type ConnectionHandler, type ConnectionInfo } from '../north.ts';
import type { VaultConfig } from '../../vaults/vault.ts';
import { openVault, serverKeys, tlsMaterial } from '../../vaults/tls-material.ts';
import { zillaEvents, type ZillaEvents } from '../../telemetry/events.ts';
import { tlsOptions, type TlsOptions } from './options.ts';

/** A client that has not finished its handshake by then is holding a socket for nothing. */
const HANDSHAKE_TIMEOUT_MS = 10_000;

interface ServerTls {
  readonly context: SecureContext;
  /** A context per key when there are several to choose from by server name; else empty. */
  readonly byName: readonly { readonly certificate: X509Certificate; readonly context: SecureContext }[];
  /** Node's option takes a mutable array. */
  readonly alpn: string[];
  /** Server names served, as globs; empty: any. */
  readonly sni: readonly Pattern[];
  readonly requestCert: boolean;
  readonly rejectUnauthorized: boolean;
}

function secureContext(
  key: string | string[],
  cert: string | string[],
  ca: readonly string[],
  version?: string,
): SecureContext {
  try {
    return createSecureContext({
      key,
      cert,
      ...(ca.length > 0 ? { ca: [...ca] } : {}),
      ...(version === undefined ? {} : { maxVersion: version as 'TLSv1.3' }),
    });
  } catch (error) {
    throw new Error(
      `TLS key or certificate unusable: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
}

/**
 * Keys and trusted certificates come by alias from the binding's vault, or from PEM files (see
 * src/vaults/tls-material.ts). Keys from a vault each get a context of their own, chosen by the
 * server name a client asks for, as Zilla chooses among a vault's keys; the first serves clients
 * that ask for none or for a name no certificate holds.
 */
export function serverTls(options: TlsOptions, vaultConfig: VaultConfig | undefined): ServerTls {
  const vault = openVault(vaultConfig);
  const material = tlsMaterial(options, vault);
  const keys = serverKeys(vault, material);
  if (keys.length === 0) {
    throw new Error(
      vault === undefined
        ? 'a tls server needs options.key and options.cert (PEM file paths)'
        : `a tls server needs keys: vault ${vault.name} has no keys store`,
    );
  }
  const { ca } = material;
  const mutual = options.mutual ?? (ca.length > 0 ? 'required' : 'none');
  const named = keys.flatMap((k) =>
    k.certificate === undefined ? [] : [{ certificate: k.certificate, key: k }],
  );
  const byName =
    named.length > 1
      ? named.map(({ certificate, key }) => ({
          certificate,
          context: secureContext(key.key, key.cert, ca, options.version),
        }))
      : [];
  const context =
    byName[0]?.context ??
    secureContext(
      keys.map((k) => k.key),
      keys.map((k) => k.cert),
      ca,
      options.version,
    );
  return {
    context,
    byName,
    alpn: [...options.alpn],
    sni: options.sni.map((name) => compileGlob(name)),
    requestCert: mutual !== 'none',
    rejectUnauthorized: mutual === 'required',
  };
}

/**
 * The `tls server` binding: terminates TLS on connections handed to it, then hands the decrypted
 * stream to the exit its routes choose by server name (`authority`), `alpn` and `port`.
 */
export class TlsServerBinding implements Binding, ConnectionHandler {
  readonly name: string;
  readonly config: BindingConfig;
  readonly #context: BindingContext;
  readonly #log: Logger;
  readonly #events: ZillaEvents;
  readonly #options: TlsOptions;
  readonly #routes: RouteTable<ConnectionInfo, ConnectionCondition>;
  readonly #pending = new Set<Socket>();
  #tls: ServerTls | undefined;
  #exits = new Map<string, ConnectionHandler>();
  #draining = false;

  constructor(context: BindingContext) {
    this.#context = context;
    this.config = context.config;
    this.name = context.config.name;
    this.#log = context.logger;
    this.#events = zillaEvents(context.metrics);
    this.#options = tlsOptions(context.config.options);
    this.#routes = connectionRoutes(context.config);
  }

  async start(_signal: AbortSignal): Promise<void> {
    this.#tls = serverTls(this.#options, this.config.vault);
    this.#exits = lookupExits(this.#context, isConnectionHandler, 'accept connections');
  }

  acceptConnection(socket: Socket, info: ConnectionInfo): void {
    const tls = this.#tls;
    if (tls === undefined || this.#draining) {
      socket.destroy();
      return;
    }
    const secure = new TLSSocket(socket, {
      isServer: true,
      secureContext: tls.context,
      requestCert: tls.requestCert,
      rejectUnauthorized: tls.rejectUnauthorized,
      ...(tls.alpn.length > 0 ? { ALPNProtocols: tls.alpn } : {}),
      ...(tls.byName.length > 0
        ? {
            SNICallback: (
              servername: string,
              callback: (error: Error | null, context?: SecureContext) => void,
            ) => {
              const chosen = tls.byName.find(
                (entry) => entry.certificate.checkHost(servername) !== undefined,
              );
              callback(null, chosen?.context ?? tls.context);
            },
          }
        : {}),
    });
    this.#pending.add(secure);
    const timer = setTimeout(() => {
      this.#log.debug(info, 'TLS handshake timed out');
      this.#events.tlsHandshakeTimeout(this.name);
      secure.destroy();
    }, HANDSHAKE_TIMEOUT_MS);
    timer.unref();
    const onError = (error: Error): void => {
      clearTimeout(timer);
      this.#pending.delete(secure);
      this.#log.debug({ err: error, ...info }, 'TLS handshake failed');
      this.#events.tlsHandshakeFailed(this.name);
      secure.destroy();
      socket.destroy();
    };
    secure.once('error', onError);
    secure.once('close', () => {
      clearTimeout(timer);
      this.#pending.delete(secure);
    });
    secure.once('secure', () => {
      clearTimeout(timer);
      this.#pending.delete(secure);
      secure.off('error', onError);
      // tls.Server clears this before it hands a socket on; Node's HTTP/2 session waits for a
      // socket still marked as connecting, so without it an h2 connection would never start.
      (secure as TLSSocket & { secureConnecting: boolean }).secureConnecting = false;
      this.#handOver(secure, info, tls);
    });
  }

  #handOver(secure: TLSSocket, info: ConnectionInfo, tls: ServerTls): void {
    secure.on('error', (error) => this.#log.debug({ err: error, ...info }, 'connection error'));
    const servername = (secure as TLSSocket & { servername?: string | false }).servername;
    const authority = typeof servername === 'string' ? servername : undefined;
    const alpn = typeof secure.alpnProtocol === 'string' ? secure.alpnProtocol : undefined;
    if (authority !== undefined && tls.sni.length > 0 && !tls.sni.some((name) => name.test(authority))) {
      this.#log.debug({ ...info, authority }, 'server name not served here; closing');
      secure.destroy();
      return;
    }
    const connection: ConnectionInfo = {
      ...info,
      secure: true,
      ...(authority === undefined ? {} : { authority }),
      ...(alpn === undefined ? {} : { alpn }),
    };
    const resolved = this.#routes.resolve(connection);
    const handler = resolved === undefined ? undefined : this.#exits.get(resolved.exit);
    if (handler === undefined) {
      this.#log.debug({ ...info, authority, alpn }, 'no route for connection; closing it');
      secure.destroy();
      return;
    }
    try {
      handler.acceptConnection(secure, connection);
    } catch (error) {
      this.#log.error({ err: error, exit: resolved?.exit }, 'exit failed to accept a connection');
      secure.destroy();
    }
  }

  drain(): void {
    if (this.#draining) return;
    this.#draining = true;
    for (const socket of this.#pending) socket.destroy();
    for (const exit of this.#exits.values()) {
      try {
        exit.drain?.();
      } catch (error) {
        this.#log.warn({ err: error }, 'exit failed to drain');
      }
    }
  }

  async stop(_signal: AbortSignal): Promise<void> {
    this.drain();
  }
}

export function createTlsServerBinding(context: BindingContext): Binding {
  return new TlsServerBinding(context);
}
