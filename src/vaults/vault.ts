import { readFileSync } from 'node:fs';
import { createHash, type X509Certificate } from 'node:crypto';
import { StoreError, type KeyEntry, type StoreContents } from './entries.ts';
import { looksLikePkcs12, readPkcs12 } from './pkcs12.ts';
import { readPem } from './pem.ts';

export { StoreError } from './entries.ts';
export type { CertificateEntry, KeyEntry, StoreContents } from './entries.ts';

/** The store types kgate reads. `jks` is accepted for a file that is PKCS#12 inside (see readStore). */
export const STORE_TYPES = ['pkcs12', 'pem', 'jks'] as const;
export type StoreType = (typeof STORE_TYPES)[number];

export type StoreRole = 'keys' | 'trust' | 'signers';
export const STORE_ROLES: readonly StoreRole[] = ['keys', 'trust', 'signers'];

/** One store of a `filesystem` vault, its path already resolved beside the config file. */
export interface StoreConfig {
  readonly store: string;
  readonly type: StoreType;
  readonly password?: string;
  /** Aliases the store offers; absent: all of them. */
  readonly entries?: readonly string[];
}

/** A `filesystem` vault as a binding receives it: plain data, so it crosses to worker threads. */
export interface VaultConfig {
  readonly name: string;
  readonly keys?: StoreConfig;
  readonly trust?: StoreConfig;
  readonly signers?: StoreConfig;
}

/** A store that cannot be read, or an alias it does not hold; says which field is to blame. */
export class VaultError extends Error {
  /** `password` when the password is what is wrong, else `store`. */
  readonly field: 'store' | 'password';
  constructor(message: string, field: 'store' | 'password' = 'store') {
    super(message);
    this.field = field;
  }
}

/**
 * Reads a store file. Like Java's key stores since Java 9, a `jks` store that is PKCS#12 inside
 * (what keytool writes by default) is read as PKCS#12; a store in the old JKS format is refused
 * with how to convert it, since no well-kept JavaScript library reads that format.
 */
export function readStore(config: StoreConfig): StoreContents {
  let bytes: Buffer;
  try {
    bytes = readFileSync(config.store);
  } catch (error) {
    const reason = error instanceof Error && 'code' in error ? String(error.code) : 'unreadable';
    throw new VaultError(`cannot read store file ${config.store} (${reason})`);
  }
  // PKCS#12's key derivation runs thousands of hash rounds in JavaScript: a store is read once per
  // content and settings, not once by validation and again by each binding that names it.
  const key = createHash('sha256')
    .update(bytes)
    .update(
      `\0${config.type}\0${config.password ?? ''}\0${config.store}\0${(config.entries ?? []).join('\0')}`,
    )
    .digest('base64');
  const cached = READ.get(key);
  if (cached !== undefined) return cached;
  const contents = parseStore(config, bytes);
  if (READ.size >= READ_LIMIT) READ.delete(READ.keys().next().value ?? '');
  READ.set(key, contents);
  return contents;
}

/** Stores read in this thread, by a digest of their bytes and settings; a few at most in practice. */
const READ = new Map<string, StoreContents>();
const READ_LIMIT = 32;

function parseStore(config: StoreConfig, bytes: Buffer): StoreContents {
  try {
    let contents: StoreContents;
    if (config.type === 'pem') contents = readPem(config.store, bytes, config.password);
    else if (looksLikePkcs12(bytes)) contents = readPkcs12(config.store, bytes, config.password);
    else if (config.type === 'jks') {
      throw new StoreError(
        `${config.store}: a store in the old JKS format, which kgate does not read; convert it with ` +
          '`keytool -importkeystore -srckeystore <file> -srcstoretype jks -destkeystore <new file> -deststoretype pkcs12`',
      );
    } else throw new StoreError(`${config.store}: not a PKCS#12 store`);
    return config.entries === undefined ? contents : restrict(contents, config.entries);
  } catch (error) {
    if (!(error instanceof StoreError)) throw error;
    throw new VaultError(error.message, /password/.test(error.message) ? 'password' : 'store');
  }
}

function restrict(contents: StoreContents, entries: readonly string[]): StoreContents {
  const wanted = new Set(entries.map((alias) => alias.toLowerCase()));
  return {
    file: contents.file,
    keys: new Map([...contents.keys].filter(([alias]) => wanted.has(alias))),
    certificates: new Map([...contents.certificates].filter(([alias]) => wanted.has(alias))),
  };
}

function holds(store: StoreContents, what: 'keys' | 'certificates'): string {
  const aliases = [...store[what].values()].map((entry) => entry.alias);
  return aliases.length === 0
    ? `it holds no ${what === 'keys' ? 'keys' : 'certificates'}`
    : `it holds ${aliases.join(', ')}`;
}

/** A `filesystem` vault with its stores read: keys, trusted and signer certificates by alias. */
export class Vault {
  readonly name: string;
  readonly #stores: Partial<Record<StoreRole, StoreContents>> = {};

  /** Reads every store; throws a VaultError for the first that cannot be used. */
  constructor(config: VaultConfig) {
    this.name = config.name;
    for (const role of STORE_ROLES) {
      const store = config[role];
      if (store !== undefined) this.#stores[role] = readStore(store);
    }
  }

  #store(role: StoreRole, alias: string): StoreContents {
    const store = this.#stores[role];
    if (store === undefined) {
      throw new VaultError(`alias ${alias}: vault ${this.name} has no ${role} store`);
    }
    return store;
  }

  /** The key entry of each alias, in order. */
  keys(aliases: readonly string[]): KeyEntry[] {
    return aliases.map((alias) => {
      const store = this.#store('keys', alias);
      const entry = store.keys.get(alias.toLowerCase());
      if (entry === undefined) {
        throw new VaultError(`alias ${alias} is not a key in ${store.file} (${holds(store, 'keys')})`);
      }
      return entry;
    });
  }

  /** Every key of the keys store: a server given no aliases serves them all, as Zilla's does. */
  allKeys(): KeyEntry[] {
    return [...(this.#stores.keys?.keys.values() ?? [])];
  }

  /** The trusted certificate of each alias, in order. */
  trust(aliases: readonly string[]): X509Certificate[] {
    return aliases.map((alias) => this.#certificate('trust', alias));
  }

  /** The keys issued by the certificate of each signer alias: a server serves those, a client presents them. */
  signers(aliases: readonly string[]): KeyEntry[] {
    const signers = aliases.map((alias) => this.#certificate('signers', alias));
    const keys = this.allKeys().filter((entry) =>
      signers.some(
        (signer) => entry.certificate.checkIssued(signer) && entry.certificate.verify(signer.publicKey),
      ),
    );
    if (keys.length === 0) {
      const where = this.#stores.keys?.file ?? `vault ${this.name} (it has no keys store)`;
      throw new VaultError(`no key in ${where} is issued by signers ${aliases.join(', ')}`);
    }
    return keys;
  }

  #certificate(role: 'trust' | 'signers', alias: string): X509Certificate {
    const store = this.#store(role, alias);
    const entry = store.certificates.get(alias.toLowerCase());
    if (entry === undefined) {
      throw new VaultError(
        `alias ${alias} is not a certificate in ${store.file} (${holds(store, 'certificates')})`,
      );
    }
    return entry.certificate;
  }
}
