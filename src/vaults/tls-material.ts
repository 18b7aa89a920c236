import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import type { X509Certificate } from 'node:crypto';
import { Vault, VaultError, type VaultConfig } from './vault.ts';

/** What a tls binding's options say about keys and trust; the binding's TlsOptions are one. */
export interface TlsMaterialOptions {
  readonly keys: readonly string[];
  readonly trust: readonly string[];
  readonly signers: readonly string[];
  readonly trustcacerts: boolean;
  readonly key?: string;
  readonly cert?: string;
  readonly ca?: string;
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

/**
 * The material part of a tls binding's options as the config file has them, for the config check,
 * which reads no binding's modules.
 */
export function tlsMaterialOptions(json: unknown): TlsMaterialOptions {
  const settings: { readonly [name: string]: unknown } =
    typeof json === 'object' && json !== null ? (json as { readonly [name: string]: unknown }) : {};
  const text = (name: string): { [name: string]: string } =>
    typeof settings[name] === 'string' ? { [name]: settings[name] } : {};
  return {
    keys: strings(settings['keys']),
    trust: strings(settings['trust']),
    signers: strings(settings['signers']),
    trustcacerts: settings['trustcacerts'] === true,
    ...text('key'),
    ...text('cert'),
    ...text('ca'),
  };
}

/** One key with its certificate chain, as Node's secure context takes them. */
export interface TlsKey {
  readonly key: string;
  /** PEM, the key's certificate first. */
  readonly cert: string;
  /** The key's own certificate when known (keys from a vault), for choosing a key by server name. */
  readonly certificate?: X509Certificate;
}

export interface TlsMaterial {
  readonly keys: readonly TlsKey[];
  /** PEM certificates to trust; empty: Node's default authorities (a client) or none (a server). */
  readonly ca: readonly string[];
}

/** The option that names what could not be had: the config check points its diagnostic there. */
export type TlsMaterialField = 'keys' | 'trust' | 'signers' | 'key' | 'cert' | 'ca';

export class TlsMaterialError extends Error {
  readonly field: TlsMaterialField;
  /** Which entry of a list option, if the option is a list. */
  readonly index: number | undefined;
  constructor(message: string, field: TlsMaterialField, index?: number) {
    super(message);
    this.field = field;
    this.index = index;
  }
}

function readPemFile(path: string, field: TlsMaterialField, index?: number): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    const reason = error instanceof Error && 'code' in error ? String(error.code) : 'unreadable';
    throw new TlsMaterialError(`cannot read TLS ${field} file ${path} (${reason})`, field, index);
  }
}

/** Resolves each alias on its own, so that an error names the list entry that failed. */
function eachAlias<T>(
  aliases: readonly string[],
  field: TlsMaterialField,
  resolve: (alias: string) => readonly T[],
): T[] {
  return aliases.flatMap((alias, index) => {
    try {
      return resolve(alias);
    } catch (error) {
      if (error instanceof VaultError) throw new TlsMaterialError(error.message, field, index);
      throw error;
    }
  });
}

/** Opens the binding's vault; a store that cannot be read is the binding's problem too. */
export function openVault(config: VaultConfig | undefined): Vault | undefined {
  return config === undefined ? undefined : new Vault(config);
}

/**
 * The keys and trusted certificates of a tls binding. With a `vault`, `keys`, `trust` and
 * `signers` entries are aliases in it, never file names. Without one, kgate keeps reading `keys`
 * entries as PEM files holding a key and its chain and `trust` entries as PEM files of
 * authorities, as before vaults existed: whether a binding names a vault decides, so an alias can
 * never be taken for a path. `key`, `cert` and `ca` are PEM file paths either way.
 */
export function tlsMaterial(options: TlsMaterialOptions, vault: Vault | undefined): TlsMaterial {
  const keys: TlsKey[] = [];
  const ca: string[] = [];
  // Each is read even alone, so that an unreadable one is named; only a pair makes a key.
  const key = options.key === undefined ? undefined : readPemFile(options.key, 'key');
  const cert = options.cert === undefined ? undefined : readPemFile(options.cert, 'cert');
  if (key !== undefined && cert !== undefined) keys.push({ key, cert });
  if (vault === undefined) {
    options.keys.forEach((path, index) => {
      const bundle = readPemFile(path, 'keys', index);
      keys.push({ key: bundle, cert: bundle });
    });
    options.trust.forEach((path, index) => ca.push(readPemFile(path, 'trust', index)));
    if (options.signers.length > 0) {
      throw new TlsMaterialError('signers are aliases of a vault: name one with `vault`', 'signers');
    }
  } else {
    const fromVault = (entry: {
      key: string;
      chain: readonly string[];
      certificate: X509Certificate;
    }): TlsKey => ({
      key: entry.key,
      cert: entry.chain.join(''),
      certificate: entry.certificate,
    });
    keys.push(...eachAlias(options.keys, 'keys', (alias) => vault.keys([alias])).map(fromVault));
    keys.push(...eachAlias(options.signers, 'signers', (alias) => vault.signers([alias])).map(fromVault));
    ca.push(...eachAlias(options.trust, 'trust', (alias) => vault.trust([alias])).map((c) => c.toString()));
  }
  if (options.ca !== undefined) ca.push(readPemFile(options.ca, 'ca'));
  if (options.trustcacerts) ca.push(...rootCertificates);
  return { keys, ca };
}

/**
 * A server's keys: those named, else, with a vault, every key of its keys store (as Zilla serves
 * them all when a server names none).
 */
export function serverKeys(vault: Vault | undefined, material: TlsMaterial): readonly TlsKey[] {
  if (material.keys.length > 0 || vault === undefined) return material.keys;
  return vault
    .allKeys()
    .map((entry) => ({ key: entry.key, cert: entry.chain.join(''), certificate: entry.certificate }));
}
