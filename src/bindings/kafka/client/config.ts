import { readFileSync } from 'node:fs';
import { rootCertificates, type ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import type { BindingConfig } from '../../../config/index.ts';
import { parseMechanism, type SaslConfig } from './sasl.ts';

/** Where and how one group of topics reaches the brokers: the exit chain flattened. */
export interface Transport {
  /** Bootstrap servers; a tcp exit with host and port replaces the binding's servers. */
  readonly servers: readonly string[];
  readonly tls: TlsConnectionOptions | undefined;
}

export interface ClientSettings {
  readonly servers: readonly string[];
  readonly sasl: SaslConfig | undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringList(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  return [];
}

/** `servers` entries may each hold a comma-separated list. */
export function parseServers(value: unknown): string[] {
  return stringList(value)
    .flatMap((entry) => entry.split(','))
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0);
}

/**
 * SASL from `options.sasl`, or from the Zilla 2.x form `options.authorization.<guard>.credentials`
 * (mechanism defaulting to PLAIN there, as the guard form carries no mechanism of its own).
 */
export function parseSasl(options: Record<string, unknown>): SaslConfig | undefined {
  const sasl = options['sasl'];
  if (isRecord(sasl)) return credentials(sasl, 'options.sasl', undefined);
  const authorization = options['authorization'];
  if (isRecord(authorization)) {
    for (const [guard, entry] of Object.entries(authorization)) {
      if (isRecord(entry) && isRecord(entry['credentials'])) {
        return credentials(entry['credentials'], `options.authorization.${guard}.credentials`, 'PLAIN');
      }
    }
  }
  return undefined;
}

function credentials(
  source: Record<string, unknown>,
  where: string,
  defaultMechanism: string | undefined,
): SaslConfig {
  const mechanism = source['mechanism'] ?? defaultMechanism;
  const username = source['username'];
  const password = source['password'];
  if (typeof mechanism !== 'string') throw new Error(`${where}.mechanism is required`);
  if (typeof username !== 'string' || username === '') throw new Error(`${where}.username is required`);
  if (typeof password !== 'string') throw new Error(`${where}.password is required`);
  return { mechanism: parseMechanism(mechanism), username, password };
}

export function parseClientSettings(config: BindingConfig): ClientSettings {
  const options = config.options;
  return { servers: parseServers(options['servers']), sasl: parseSasl(options) };
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
    if (binding.type === 'tls') tls = tlsOptions(binding);
    else if (binding.type === 'tcp') {
      const host = binding.options['host'];
      const port = binding.options['port'];
      if (typeof host === 'string' && (typeof port === 'number' || typeof port === 'string'))
        resolved = [`${host}:${port}`];
      break;
    } else break;
    next = binding.exit;
  }
  if (resolved.length === 0)
    throw new Error('no Kafka servers: set options.servers or a tcp exit with host and port');
  return { servers: resolved, tls };
}

function readPem(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(
      `cannot read TLS ${what} file ${path}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

/** `ca` is a PEM file; `trust` entries are taken as PEM file paths too (kgate has no vaults). */
export function tlsOptions(binding: BindingConfig): TlsConnectionOptions {
  const options = binding.options;
  const ca: string[] = [];
  const caFile = options['ca'];
  if (typeof caFile === 'string') ca.push(readPem(caFile, 'ca'));
  for (const path of stringList(options['trust'])) ca.push(readPem(path, 'trust'));
  if (options['trustcacerts'] === true) ca.push(...rootCertificates);
  const tls: TlsConnectionOptions = { rejectUnauthorized: true };
  if (ca.length > 0) tls.ca = ca;
  const sni = stringList(options['sni'])[0];
  if (sni !== undefined) tls.servername = sni;
  const key = options['key'];
  const cert = options['cert'];
  if (typeof key === 'string') tls.key = readPem(key, 'key');
  if (typeof cert === 'string') tls.cert = readPem(cert, 'cert');
  const version = options['version'];
  if (typeof version === 'string') tls.maxVersion = version as TlsConnectionOptions['maxVersion'];
  return tls;
}
