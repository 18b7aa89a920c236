import {
  compileCidr,
  compileGlob,
  compilePorts,
  NO_PARAMS,
  RouteTable,
  type BindingConfig,
  type ConditionMatcher,
  type Pattern,
  type PortSpec,
} from '../config/index.ts';
import type { ConnectionInfo } from './north.ts';

/** One `when` entry of a tcp server's routes (`cidr`, `authority`, `port`) or a tls server's (`authority`, `alpn`, `port`). */
export interface ConnectionCondition {
  readonly cidr?: string;
  readonly authority?: string;
  readonly alpn?: string;
  readonly port?: PortSpec;
}

/**
 * Matches a connection by its local port, remote address, and the server name (case-insensitive
 * glob) and application protocol (glob) a tls server found. A condition on a server name or
 * protocol the connection has none of does not match.
 */
export class ConnectionConditionMatcher implements ConditionMatcher<ConnectionInfo> {
  readonly #port: ((port: number) => boolean) | undefined;
  readonly #cidr: ((address: string) => boolean) | undefined;
  readonly #authority: Pattern | undefined;
  readonly #alpn: Pattern | undefined;

  constructor(condition: ConnectionCondition) {
    this.#port = condition.port === undefined ? undefined : compilePorts(condition.port);
    this.#cidr = condition.cidr === undefined ? undefined : compileCidr(condition.cidr);
    this.#authority = condition.authority === undefined ? undefined : compileGlob(condition.authority, true);
    this.#alpn = condition.alpn === undefined ? undefined : compileGlob(condition.alpn);
  }

  match(connection: ConnectionInfo): Readonly<Record<string, string>> | undefined {
    if (this.#port !== undefined && !this.#port(connection.localPort)) return undefined;
    if (this.#cidr !== undefined && !this.#cidr(connection.remoteAddress)) return undefined;
    if (!matches(this.#authority, connection.authority)) return undefined;
    if (!matches(this.#alpn, connection.alpn)) return undefined;
    return NO_PARAMS;
  }
}

function matches(pattern: Pattern | undefined, value: string | undefined): boolean {
  return pattern === undefined || (value !== undefined && pattern.test(value));
}

/** The routes of a tcp or tls server, by connection. */
export function connectionRoutes(
  binding: Pick<BindingConfig, 'name' | 'routes' | 'exit'>,
): RouteTable<ConnectionInfo, ConnectionCondition> {
  return new RouteTable(
    binding,
    (condition: ConnectionCondition) => new ConnectionConditionMatcher(condition),
  );
}
