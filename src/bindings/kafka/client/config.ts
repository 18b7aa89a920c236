import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import type { BindingConfig } from '../../../config/index.ts';
import { tcpClientOptions } from '../../tcp/options.ts';
import { openVault, tlsMaterial } from '../../../vaults/tls-material.ts';
import { tlsOptions, type TlsOptions } from '../../tls/options.ts';
import type { VaultConfig } from '../../../vaults/vault.ts';
import { parseMechanism, type SaslConfig } from './sasl.ts';

/** A kafka client's options as the schema admits them. */
export interface ClientBindingOptionsJson {
  readonly servers?: readonly string[];
  readonly sasl?: SaslJson;
  readonly authorization?: { readonly [guard: string]: { readonly credentials: Credentials } };
  readonly produce?: { readonly deliveryTimeoutMs?: number };
}

// A type rather than an interface, so that it reads as Credentials too.
type SaslJson = {
  readonly mechanism: string;
  readonly username: string;
  readonly password: string;
};

/** Credential fields of the Zilla 2.x form, by name. */
interface Credentials {
  readonly [name: string]: string | undefined;
}

export interface ClientBindingOptions {
  /** Bootstrap servers, each entry of the file split at commas. */
  readonly servers: readonly string[];
  readonly sasl: SaslConfig | undefined;
  /** How long a produce keeps trying before it is answered; the client's default when undefined. */
  readonly deliveryTimeoutMs: number | undefined;
}

/** Where and how one group of topics reaches the brokers: the exit chain flattened. */
export interface Transport {
  /** Bootstrap servers; a tcp exit with host and port replaces the binding's servers. */
  readonly servers: readonly string[];
  readonly tls: TlsConnectionOptions | undefined;
}

/**
 * A kafka client's options that passed its schema. Throws for credentials of the Zilla 2.x form that
 * lack a user name or password, which the schema cannot tell.
 */
export function clientBindingOptions(options: unknown): ClientBindingOptions {
  const json = options as ClientBindingOptionsJson;
  return {
    servers: parseServers(json.servers ?? []),
    sasl: parseSasl(json),
    deliveryTimeoutMs: json.produce?.deliveryTimeoutMs,
  };
}

/** `servers` entries may each hold a comma-separated list: one environment variable often carries all. */
export function parseServers(servers: readonly string[]): string[] {
  return servers
    .flatMap((entry) => entry.split(','))
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0);
}

/**
 * SASL from `options.sasl`, or from the Zilla 2.x form `options.authorization.<guard>.credentials`
 * (mechanism defaulting to PLAIN there, as the guard form carries no mechanism of its own).
 */
export function parseSasl(options: ClientBindingOptionsJson): SaslConfig | undefined {
  if (options.sasl !== undefined) return credentials(options.sasl, 'options.sasl', undefined);
  const first = Object.entries(options.authorization ?? {})[0];
  if (first === undefined) return undefined;
  const [guard, entry] = first;
  return credentials(entry.credentials, `options.authorization.${guard}.credentials`, 'PLAIN');
}

function credentials(source: Credentials, where: string, defaultMechanism: string | undefined): SaslConfig {
  const mechanism = source['mechanism'] ?? defaultMechanism;
  const username = source['username'];
  const password = source['password'];
  if (mechanism === undefined) throw new Error(`${where}.mechanism is required`);
  if (username === undefined || username === '') throw new Error(`${where}.username is required`);
  if (password === undefined) throw new Error(`${where}.password is required`);
  return { mechanism: parseMechanism(mechanism), username, password };
}

/**
 * Follows an exit chain (tls client, then tcp client) to the settings it implies. Only the exit
 * bindings' options are read: kgate opens the sockets itself, one per broker, whatever the chain.
 */
export function resolveTransport(
  servers: readonly string[],
  exit: string | undefined,
  configOf: (name: string) => BindingConfig | undefined,
): Transport {
  let tls: TlsConnectionOptions | undefined;
  let resolved = servers;
  const seen = new Set<string>();
  let next = exit;
  while (next !== undefined && !seen.has(next)) {
    seen.add(next);
    const binding = configOf(next);
    if (binding === undefined) break;
    if (binding.type === 'tls') tls = tlsConnectionOptions(tlsOptions(binding.options), binding.vault);
    else if (binding.type === 'tcp') {
      const { host, port } = tcpClientOptions(binding.options);
      // A list or range of ports names no one broker address.
      if (host !== undefined && (typeof port === 'number' || typeof port === 'string'))
        resolved = [`${host}:${port}`];
      break;
    } else break;
    next = binding.exit;
  }
  if (resolved.length === 0)
    throw new Error('no Kafka servers: set options.servers or a tcp exit with host and port');
  return { servers: resolved, tls };
}

/**
 * A tls exit's settings for each broker connection: keys (a client certificate) and trusted
 * certificates by alias from the tls binding's vault, or from PEM files (see tls/material.ts).
 */
export function tlsConnectionOptions(options: TlsOptions, vault?: VaultConfig): TlsConnectionOptions {
  const { keys, ca } = tlsMaterial(options, openVault(vault));
  const tls: TlsConnectionOptions = { rejectUnauthorized: true };
  if (ca.length > 0) tls.ca = [...ca];
  const sni = options.sni[0];
  if (sni !== undefined) tls.servername = sni;
  const key = keys[0];
  if (key !== undefined) {
    tls.key = key.key;
    tls.cert = key.cert;
  }
  if (options.version !== undefined) tls.maxVersion = options.version as TlsConnectionOptions['maxVersion'];
  return tls;
}
