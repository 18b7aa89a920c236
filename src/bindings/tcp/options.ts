import { TCP_DEFAULT_HOST, type PortSpec } from '../../config/index.ts';

/** Zilla listens on every interface unless told otherwise; validation checks ports by the same. */
export const DEFAULT_HOST = TCP_DEFAULT_HOST;

/** A tcp server's options as the schema admits them. */
export interface TcpServerOptionsJson {
  readonly host?: string;
  readonly port: PortSpec;
  readonly backlog?: number;
  readonly nodelay?: boolean;
  readonly keepalive?: boolean;
}

export interface TcpServerOptions {
  readonly host: string;
  /** Expanded into ports at start, where a range that names no port fails the binding. */
  readonly port: PortSpec;
  /** Absent: Node's default queue. */
  readonly backlog?: number;
  readonly nodelay: boolean;
  readonly keepalive: boolean;
}

/** A tcp client's options as the schema admits them. */
export interface TcpClientOptionsJson {
  readonly host?: string;
  readonly port?: PortSpec;
  readonly nodelay?: boolean;
  readonly keepalive?: boolean;
}

/**
 * The kafka client in front opens the connections and reads only `host` and `port`: together they
 * replace the brokers it was given. `nodelay` and `keepalive` are accepted for Zilla files.
 */
export interface TcpClientOptions {
  readonly host?: string;
  readonly port?: PortSpec;
}

/** A tcp server's options that passed its schema, with defaults applied. */
export function tcpServerOptions(options: unknown): TcpServerOptions {
  const json = options as TcpServerOptionsJson;
  return {
    host: json.host ?? DEFAULT_HOST,
    port: json.port,
    ...(json.backlog === undefined ? {} : { backlog: json.backlog }),
    nodelay: json.nodelay !== false,
    keepalive: json.keepalive === true,
  };
}

/** A tcp client's options that passed its schema. */
export function tcpClientOptions(options: unknown): TcpClientOptions {
  const json = options as TcpClientOptionsJson;
  return {
    ...(json.host === undefined ? {} : { host: json.host }),
    ...(json.port === undefined ? {} : { port: json.port }),
  };
}
