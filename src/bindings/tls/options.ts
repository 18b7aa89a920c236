/** Options of a tls server or client as the schema admits them (the `tlsOptions` definition). */
export interface TlsOptionsJson {
  readonly version?: string;
  readonly keys?: readonly string[];
  readonly trust?: readonly string[];
  readonly signers?: readonly string[];
  readonly trustcacerts?: boolean;
  readonly sni?: readonly string[];
  readonly alpn?: readonly string[];
  readonly mutual?: TlsMutual;
  readonly key?: string;
  readonly cert?: string;
  readonly ca?: string;
}

export type TlsMutual = 'required' | 'requested' | 'none';

/**
 * TLS settings of a tls server or client. Keys and certificates are named, not read: a server
 * reads them when it starts, a kafka client in front of a tls client when it connects
 * (src/vaults/tls-material.ts resolves `keys`, `trust` and `signers`, by vault alias or as files).
 */
export interface TlsOptions {
  /** Highest protocol version, such as `TLSv1.3`; absent: Node's. */
  readonly version?: string;
  readonly keys: readonly string[];
  readonly trust: readonly string[];
  /** Aliases of signer certificates: the keys they issued are served (or presented). */
  readonly signers: readonly string[];
  readonly trustcacerts: boolean;
  /** A server's names (globs), or the one a client asks for. */
  readonly sni: readonly string[];
  readonly alpn: readonly string[];
  /** Absent: required when certificate authorities are given, else none. */
  readonly mutual?: TlsMutual;
  readonly key?: string;
  readonly cert?: string;
  readonly ca?: string;
}

/** TLS options that passed their schema, with absent lists empty. */
export function tlsOptions(options: unknown): TlsOptions {
  const json = options as TlsOptionsJson;
  return {
    ...(json.version === undefined ? {} : { version: json.version }),
    keys: json.keys ?? [],
    trust: json.trust ?? [],
    signers: json.signers ?? [],
    trustcacerts: json.trustcacerts === true,
    sni: json.sni ?? [],
    alpn: json.alpn ?? [],
    ...(json.mutual === undefined ? {} : { mutual: json.mutual }),
    ...(json.key === undefined ? {} : { key: json.key }),
    ...(json.cert === undefined ? {} : { cert: json.cert }),
    ...(json.ca === undefined ? {} : { ca: json.ca }),
  };
}
