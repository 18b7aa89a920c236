import { TlsMaterialError, serverKeys, tlsMaterial, tlsMaterialOptions } from '../vaults/tls-material.ts';
import {
  STORE_ROLES,
  Vault,
  VaultError,
  readStore,
  type StoreConfig,
  type StoreType,
  type VaultConfig,
} from '../vaults/vault.ts';
import { didYouMean } from './diagnostics.ts';
import { resolveBesideConfig } from './own-files.ts';
import type { ShowValue } from './schema.ts';
import { pointerOf, type Segment } from './source.ts';

/**
 * The `vaults` section, resolved: store paths beside the config file, as Zilla resolves them, so
 * that a config means the same files wherever kgate was started.
 */

export interface VaultProblem {
  readonly pointer: string;
  readonly message: string;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The vaults of a config that passed its schema, by name. */
export function toVaults(section: unknown, configFile: string): Map<string, VaultConfig> {
  const vaults = new Map<string, VaultConfig>();
  if (!isObject(section)) return vaults;
  for (const [name, raw] of Object.entries(section)) {
    if (!isObject(raw)) continue;
    const settings = isObject(raw['options']) ? raw['options'] : {};
    const stores: { -readonly [role in (typeof STORE_ROLES)[number]]?: StoreConfig } = {};
    for (const role of STORE_ROLES) {
      const store = settings[role];
      if (!isObject(store) || typeof store['store'] !== 'string') continue;
      stores[role] = {
        store: resolveBesideConfig(store['store'], configFile),
        type: (typeof store['type'] === 'string' ? store['type'].toLowerCase() : 'pkcs12') as StoreType,
        ...(typeof store['password'] === 'string' ? { password: store['password'] } : {}),
        ...(Array.isArray(store['entries']) ? { entries: store['entries'].map(String) } : {}),
      };
    }
    vaults.set(name, { name, ...stores });
  }
  return vaults;
}

/**
 * What `start` would fail on, found without starting: every store is read (a missing file, a
 * wrong password, a damaged or JKS-format store), every vault a binding names exists, and every
 * alias a tls binding names is in its vault's store. Messages name the alias and the store file;
 * never a password.
 */
export function checkVaults(
  data: Record<string, unknown>,
  vaults: ReadonlyMap<string, VaultConfig>,
  options: { readonly show: ShowValue; readonly fromFile: boolean },
): VaultProblem[] {
  const problems: VaultProblem[] = [];
  const problem = (segments: Segment[], message: string): void => {
    problems.push({ pointer: pointerOf(segments), message });
  };
  const opened = new Map<string, Vault>();
  for (const vault of vaults.values()) {
    let readable = true;
    for (const role of STORE_ROLES) {
      const store = vault[role];
      if (store === undefined) continue;
      try {
        readStore(store);
      } catch (error) {
        if (!(error instanceof VaultError)) throw error;
        readable = false;
        const field = error.field === 'password' && store.password !== undefined ? 'password' : 'store';
        problem(['vaults', vault.name, 'options', role, field], error.message);
      }
    }
    if (readable) opened.set(vault.name, new Vault(vault));
  }

  const bindings = isObject(data['bindings']) ? data['bindings'] : {};
  for (const [name, binding] of Object.entries(bindings)) {
    if (!isObject(binding)) continue;
    const vaultName = binding['vault'];
    if (typeof vaultName === 'string' && !vaults.has(vaultName)) {
      const pointer = pointerOf(['bindings', name, 'vault']);
      problem(
        ['bindings', name, 'vault'],
        `no vault named ${options.show(pointer, vaultName)}${didYouMean(vaultName, [...vaults.keys()])}`,
      );
      continue;
    }
    if (binding['type'] !== 'tls') continue;
    const vault = typeof vaultName === 'string' ? opened.get(vaultName) : undefined;
    // A vault that could not be read has its own problem; its aliases cannot be checked.
    if (typeof vaultName === 'string' && vault === undefined) continue;
    // PEM file paths (no vault) are read relative to where kgate runs: checked only for a file.
    if (vault === undefined && !options.fromFile) continue;
    const tls = tlsMaterialOptions(binding['options']);
    try {
      const material = tlsMaterial(tls, vault);
      if (binding['kind'] === 'server' && serverKeys(vault, material).length === 0) {
        problem(
          ['bindings', name, vault === undefined ? 'options' : 'vault'],
          vault === undefined
            ? 'a tls server needs keys: options.key and options.cert, or a `vault` with a keys store'
            : `a tls server needs keys: vault ${vault.name} has no keys store`,
        );
      }
    } catch (error) {
      if (!(error instanceof TlsMaterialError)) throw error;
      const at: Segment[] = ['bindings', name, 'options', error.field];
      if (error.index !== undefined) at.push(error.index);
      const hint =
        vault === undefined && (error.field === 'keys' || error.field === 'trust')
          ? ': without a `vault` on the binding, entries are PEM file paths; name a vault to use them as aliases'
          : '';
      problem(at, `${error.message}${hint}`);
    }
  }
  return problems;
}
