import { createPrivateKey, X509Certificate } from 'node:crypto';
import { createRequire } from 'node:module';
import type * as Forge from 'node-forge';
import {
  assembleStore,
  StoreError,
  type FoundCertificate,
  type FoundKey,
  type StoreContents,
} from './entries.ts';

// node-forge reads the PKCS#12 container (its MAC, PBES2 and legacy encryption, bag attributes);
// Node's own crypto takes over from the DER of each key and certificate, which also covers the
// EC keys node-forge reads only as ASN.1.

// node-forge is CommonJS whose exports are assigned at run time, which an ESM import cannot see.
const forge = createRequire(import.meta.url)('node-forge') as typeof Forge;

function derOf(node: Forge.asn1.Asn1): Buffer {
  return Buffer.from(forge.asn1.toDer(node).getBytes(), 'binary');
}

function attribute(bag: Forge.pkcs12.Bag, name: 'friendlyName' | 'localKeyId'): string | undefined {
  const values: unknown = bag.attributes[name];
  if (!Array.isArray(values)) return undefined;
  const first: unknown = values[0];
  if (typeof first !== 'string') return undefined;
  return name === 'localKeyId' ? Buffer.from(first, 'binary').toString('hex') : first;
}

function naming(bag: Forge.pkcs12.Bag): { name?: string; localKeyId?: string } {
  const name = attribute(bag, 'friendlyName');
  const localKeyId = attribute(bag, 'localKeyId');
  return { ...(name === undefined ? {} : { name }), ...(localKeyId === undefined ? {} : { localKeyId }) };
}

function keyOf(bag: Forge.pkcs12.Bag): FoundKey | undefined {
  let der: Buffer;
  if (bag.key !== undefined && bag.key !== null) {
    const rsa = forge.pki.privateKeyToAsn1(bag.key);
    der = derOf(forge.pki.wrapRsaPrivateKey(rsa));
  } else if (bag.asn1 !== undefined) der = derOf(bag.asn1);
  else return undefined;
  return { ...naming(bag), key: createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }) };
}

function certificateOf(bag: Forge.pkcs12.Bag): FoundCertificate | undefined {
  let der: Buffer;
  if (bag.cert !== undefined && bag.cert !== null) der = derOf(forge.pki.certificateToAsn1(bag.cert));
  else if (bag.asn1 !== undefined) der = derOf(bag.asn1);
  else return undefined;
  return { ...naming(bag), certificate: new X509Certificate(der) };
}

/** Whether the bytes can be a PKCS#12 file: a DER SEQUENCE, which a JKS file (0xFEEDFEED) is not. */
export function looksLikePkcs12(bytes: Buffer): boolean {
  return bytes[0] === 0x30;
}

/**
 * Reads a PKCS#12 store. A wrong password fails the file's integrity check, so it is told apart
 * from a damaged file; the password itself never appears in a message.
 */
export function readPkcs12(file: string, bytes: Buffer, password: string | undefined): StoreContents {
  let p12: Forge.pkcs12.Pkcs12Pfx;
  try {
    const asn1 = forge.asn1.fromDer(bytes.toString('binary'), false);
    p12 = forge.pkcs12.pkcs12FromAsn1(asn1, false, password ?? '');
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    if (/MAC could not be verified|wrong password|Invalid password/i.test(reason)) {
      throw new StoreError(`${file}: wrong password for the PKCS#12 store`);
    }
    throw new StoreError(`${file}: not a readable PKCS#12 store (${reason})`);
  }
  const keys: FoundKey[] = [];
  const certificates: FoundCertificate[] = [];
  try {
    for (const contents of p12.safeContents) {
      for (const bag of contents.safeBags) {
        if (bag.type === forge.pki.oids['certBag']) {
          const found = certificateOf(bag);
          if (found !== undefined) certificates.push(found);
        } else if (
          bag.type === forge.pki.oids['pkcs8ShroudedKeyBag'] ||
          bag.type === forge.pki.oids['keyBag']
        ) {
          const found = keyOf(bag);
          if (found !== undefined) keys.push(found);
        }
      }
    }
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new StoreError(`${file}: an entry of the PKCS#12 store is unreadable (${reason})`);
  }
  return assembleStore(file, keys, certificates);
}
