import { createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';

/**
 * What a key store holds once read, whatever its file format: private keys with their certificate
 * chains, and trusted certificates, each under an alias. Java's key stores match aliases ignoring
 * case (keytool writes them in lower case), and so do these, so that a Zilla config's aliases
 * name the same entries here as there.
 */
export interface KeyEntry {
  readonly alias: string;
  /** PKCS#8 PEM, unencrypted: it lives only in memory, handed to Node's TLS. */
  readonly key: string;
  /** PEM certificates, the key's own first, then each issuer the store holds. */
  readonly chain: readonly string[];
  /** The key's own certificate, for choosing a key by server name or by issuer. */
  readonly certificate: X509Certificate;
}

export interface CertificateEntry {
  readonly alias: string;
  readonly certificate: X509Certificate;
}

export interface StoreContents {
  /** The store file, as named to the user in every message about it. */
  readonly file: string;
  /** By alias in lower case. */
  readonly keys: ReadonlyMap<string, KeyEntry>;
  /** Trusted certificates (no key of the store's), by alias in lower case. */
  readonly certificates: ReadonlyMap<string, CertificateEntry>;
}

/** A private key as a parser found it, with the bag attributes that name it, if any. */
export interface FoundKey {
  readonly name?: string;
  readonly localKeyId?: string;
  readonly key: KeyObject;
}

/** A certificate as a parser found it, with the bag attributes that name it, if any. */
export interface FoundCertificate {
  readonly name?: string;
  readonly localKeyId?: string;
  readonly certificate: X509Certificate;
}

/** Thrown for a store that cannot be used; the message names the file and never a password. */
export class StoreError extends Error {}

function publicKeyDer(key: KeyObject): string {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  return publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
}

/** The certificates from `leaf` up its issuers, as far as `pool` holds them. */
function chainOf(leaf: X509Certificate, pool: readonly X509Certificate[]): X509Certificate[] {
  const chain = [leaf];
  let current = leaf;
  // A chain is never longer than the pool; the bound also stops a loop of cross-signed certificates.
  for (let step = 0; step < pool.length; step++) {
    if (current.checkIssued(current)) break;
    const issuer = pool.find((candidate) => !chain.includes(candidate) && current.checkIssued(candidate));
    if (issuer === undefined) break;
    chain.push(issuer);
    current = issuer;
  }
  return chain;
}

/**
 * Pairs each key with the certificate holding its public key and names it by the key's bag name,
 * else its certificate's; a certificate that belongs to no key but has a name is a trusted entry.
 */
export function assembleStore(
  file: string,
  keys: readonly FoundKey[],
  certificates: readonly FoundCertificate[],
): StoreContents {
  const pool = certificates.map((found) => found.certificate);
  const byPublicKey = new Map<string, FoundCertificate>();
  for (const found of certificates) {
    const der = publicKeyDer(found.certificate.publicKey);
    if (!byPublicKey.has(der)) byPublicKey.set(der, found);
  }
  const keyEntries = new Map<string, KeyEntry>();
  const leaves = new Set<X509Certificate>();
  for (const found of keys) {
    const leaf = byPublicKey.get(publicKeyDer(found.key));
    if (leaf === undefined) {
      throw new StoreError(
        `${file}: the key${found.name === undefined ? '' : ` ${found.name}`} has no certificate in the store`,
      );
    }
    leaves.add(leaf.certificate);
    const alias = found.name ?? leaf.name;
    if (alias === undefined) continue;
    keyEntries.set(alias.toLowerCase(), {
      alias,
      key: found.key.export({ type: 'pkcs8', format: 'pem' }).toString(),
      chain: chainOf(leaf.certificate, pool).map((certificate) => certificate.toString()),
      certificate: leaf.certificate,
    });
  }
  const certificateEntries = new Map<string, CertificateEntry>();
  for (const found of certificates) {
    if (found.name === undefined || leaves.has(found.certificate)) continue;
    certificateEntries.set(found.name.toLowerCase(), { alias: found.name, certificate: found.certificate });
  }
  return { file, keys: keyEntries, certificates: certificateEntries };
}
