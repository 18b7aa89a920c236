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
  readonly username?: string;
  readonly password?: string;
  readonly token?: string;
};

/**
 * An `inline` guard of the config: what `{identity}` and `{credentials}` stand for in the
 * credential fields of an `authorization` that names it, as in Zilla.
 */
export interface InlineGuard {
  readonly identity?: string;
  readonly credentials?: string;
}

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
export function clientBindingOptions(
  options: unknown,
  guards: { readonly [name: string]: InlineGuard } = {},
): ClientBindingOptions {
  const json = options as ClientBindingOptionsJson;
  return {
    servers: parseServers(json.servers ?? []),
    sasl: parseSasl(json, guards),
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
 * (mechanism defaulting to PLAIN there, as the guard form carries no mechanism of its own), where
 * `{identity}` and `{credentials}` stand for those of the inline guard named.
 */
export function parseSasl(
  options: ClientBindingOptionsJson,
  guards: { readonly [name: string]: InlineGuard } = {},
): SaslConfig | undefined {
  if (options.sasl !== undefined) return credentials(options.sasl, 'options.sasl', undefined);
  const first = Object.entries(options.authorization ?? {})[0];
  if (first === undefined) return undefined;
  const [guard, entry] = first;
  const inline = guards[guard];
  const fields: { [name: string]: string | undefined } = {};
  for (const [name, value] of Object.entries(entry.credentials)) {
    fields[name] = value === undefined ? undefined : fillPlaceholders(value, inline, guard);
  }
  return credentials(fields, `options.authorization.${guard}.credentials`, 'PLAIN');
}

/** `{identity}` and `{credentials}` replaced by the inline guard's, which validation made sure exist. */
function fillPlaceholders(value: string, guard: InlineGuard | undefined, name: string): string {
  return value.replaceAll(/\{(identity|credentials)\}/g, (_, field: 'identity' | 'credentials') => {
    const filled = guard?.[field];
    if (filled === undefined) throw new Error(`{${field}} needs an inline guard ${name} with ${field}`);
    return filled;
  });
}

function credentials(source: Credentials, where: string, defaultMechanism: string | undefined): SaslConfig {
  const given = source['mechanism'] ?? defaultMechanism;
  if (given === undefined) throw new Error(`${where}.mechanism is required`);
  const mechanism = parseMechanism(given);
  if (mechanism === 'OAUTHBEARER') {
    const token = source['token'];
    // The token goes into a message whose fields are separated by 0x01.
    if (token === undefined || token === '' || token.includes('\x01'))
      throw new Error(`${where}.token is required`);
    return { mechanism, token };
  }
  const username = source['username'];
  const password = source['password'];
  if (username === undefined || username === '') throw new Error(`${where}.username is required`);
  if (password === undefined) throw new Error(`${where}.password is required`);
  return { mechanism, username, password };
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
 * certificates by alias from the tls binding's vault, or from PEM files (see src/vaults/tls-material.ts).
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
