import { createPrivateKey, X509Certificate } from 'node:crypto';
import {
  assembleStore,
  StoreError,
  type FoundCertificate,
  type FoundKey,
  type StoreContents,
} from './entries.ts';

/**
 * A PEM key store: any number of keys and certificates in one text file. PEM has no aliases of its
 * own, so entries are named the way `openssl pkcs12 -nodes` writes them out: a `friendlyName:`
 * line among the bag attributes above a block. A key and its certificate pair by public key, so a
 * name on either one names the entry.
 */

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n[\s\S]*?-----END \1-----/g;
/** Bounded by the line: the text between two blocks is the file's, never a client's. */
const FRIENDLY_NAME = /^\s*friendlyName:\s*(\S.*?)\s*$/m;
const LOCAL_KEY_ID = /^\s*localKeyID:\s*([0-9A-Fa-f ]+?)\s*$/m;

function naming(preamble: string): { name?: string; localKeyId?: string } {
  const name = FRIENDLY_NAME.exec(preamble)?.[1];
  const id = LOCAL_KEY_ID.exec(preamble)?.[1];
  return {
    ...(name === undefined ? {} : { name }),
    ...(id === undefined ? {} : { localKeyId: id.replaceAll(' ', '').toLowerCase() }),
  };
}

export function readPem(file: string, bytes: Buffer, password: string | undefined): StoreContents {
  const text = bytes.toString('utf8');
  const keys: FoundKey[] = [];
  const certificates: FoundCertificate[] = [];
  let previousEnd = 0;
  for (const match of text.matchAll(BLOCK)) {
    const preamble = text.slice(previousEnd, match.index);
    previousEnd = match.index + match[0].length;
    const label = match[1] ?? '';
    const block = match[0];
    if (label === 'CERTIFICATE') {
      certificates.push({ ...naming(preamble), certificate: new X509Certificate(block) });
    } else if (label.endsWith('PRIVATE KEY')) {
      const encrypted = label === 'ENCRYPTED PRIVATE KEY' || block.includes('Proc-Type: 4,ENCRYPTED');
      if (encrypted && password === undefined) {
        throw new StoreError(`${file}: a key is encrypted and the store has no password`);
      }
      try {
        const key = createPrivateKey({
          key: block,
          format: 'pem',
          ...(encrypted && password !== undefined ? { passphrase: password } : {}),
        });
        keys.push({ ...naming(preamble), key });
      } catch {
        throw new StoreError(
          encrypted ? `${file}: wrong password for an encrypted key` : `${file}: a private key is unreadable`,
        );
      }
    }
  }
  if (keys.length === 0 && certificates.length === 0) {
    throw new StoreError(`${file}: no PEM key or certificate in the file`);
  }
  return assembleStore(file, keys, certificates);
}
