import { BlockList, isIP } from 'node:net';
import type { BindingConfig, RouteConfig } from './index.ts';

/**
 * Route matching. A binding compiles the `when` conditions of its routes once, when it is built,
 * into matchers of what it routes: a topic (kafka), a connection (tcp, tls), a request's headers
 * (http) or its method and path (the proxies and sse). Resolving a stream then runs the matchers in
 * order. A route matches when any of its conditions matches (or it has none); a condition matches
 * when all of its entries do. The first matching route wins; the binding's `exit` is the fallback.
 */

/** One compiled `when` condition. */
export interface ConditionMatcher<S> {
  /** The path parameters the condition captured, or undefined when `subject` does not match it. */
  match(subject: S): Readonly<Record<string, string>> | undefined;
}

export interface ResolvedRoute {
  exit: string;
  /** The matched route; absent when the binding's default `exit` was taken. */
  route?: RouteConfig;
  /** Path parameters captured by the matched condition, for `${params.name}` templates. */
  params: Readonly<Record<string, string>>;
}

/** What a condition without path parameters answers on a match; never written to. */
export const NO_PARAMS: Readonly<Record<string, string>> = Object.freeze({});

interface CompiledRoute<S> {
  readonly route: RouteConfig;
  /** Empty: the route matches everything. */
  readonly conditions: readonly ConditionMatcher<S>[];
}

/**
 * A binding's routes with their conditions compiled, and its default exit. `S` is what the binding
 * routes, `C` the shape of one `when` entry as the binding's schema admits it.
 */
export class RouteTable<S, C = Readonly<Record<string, unknown>>> {
  readonly #routes: readonly CompiledRoute<S>[];
  readonly #exit: string | undefined;

  /** `compile` runs once per condition, here; what it throws names the binding and the condition. */
  constructor(
    binding: Pick<BindingConfig, 'name' | 'routes' | 'exit'>,
    compile: (condition: C) => ConditionMatcher<S>,
  ) {
    this.#routes = binding.routes.map((route, i) => ({
      route,
      conditions: route.when.map((condition, j) => {
        try {
          // The loader checked every condition against the binding's schema, which C describes.
          return compile(condition as C);
        } catch (error) {
          const reason = error instanceof Error ? error.message : String(error);
          throw new Error(`binding ${binding.name}: routes[${i}].when[${j}]: ${reason}`, { cause: error });
        }
      }),
    }));
    this.#exit = binding.exit;
  }

  /** The first route `subject` matches, else the default exit; undefined when there is neither. */
  resolve(subject: S): ResolvedRoute | undefined {
    for (const { route, conditions } of this.#routes) {
      if (conditions.length === 0) return { exit: route.exit, route, params: NO_PARAMS };
      for (const condition of conditions) {
        const params = condition.match(subject);
        if (params !== undefined) return { exit: route.exit, route, params };
      }
    }
    return this.#exit === undefined ? undefined : { exit: this.#exit, params: NO_PARAMS };
  }

  /** The exit of resolve(subject). */
  exitFor(subject: S): string | undefined {
    return this.resolve(subject)?.exit;
  }

  /** The binding's default exit, taken when no route matches. */
  get defaultExit(): string | undefined {
    return this.#exit;
  }
}

const globCache = new Map<string, RegExp>();

function escapeRegExp(text: string): string {
  return text.replace(/[.+^${}()|[\]\\/?*]/g, '\\$&');
}

/** Glob: `*` is any run of characters (including none), `?` exactly one; everything else is literal. */
export function compileGlob(pattern: string, ignoreCase = false): RegExp {
  const cacheKey = `${ignoreCase ? 'i' : ''}:${pattern}`;
  let re = globCache.get(cacheKey);
  if (!re) {
    const source = [...pattern].map((c) => (c === '*' ? '.*' : c === '?' ? '.' : escapeRegExp(c))).join('');
    re = new RegExp(`^${source}$`, ignoreCase ? 'si' : 's');
    globCache.set(cacheKey, re);
  }
  return re;
}

/** Whether `topic` matches the glob `pattern`. */
export function matchTopic(pattern: string, topic: string): boolean {
  return compileGlob(pattern).test(topic);
}

/** A compiled path template: the parameters a path captures, or undefined when it does not match. */
export type PathMatcher = (path: string) => Record<string, string> | undefined;

const templateCache = new Map<string, PathMatcher>();

/**
 * Compiles a Zilla path template: `{name}` captures one segment (up to `/` or `;`), `*` matches any
 * run of characters.
 */
export function compilePath(template: string): PathMatcher {
  let compiled = templateCache.get(template);
  if (!compiled) {
    const names: string[] = [];
    let source = '';
    for (const part of template.split(/(\{[A-Za-z_][A-Za-z0-9_]*\}|\*)/)) {
      if (part === '*') source += '.*';
      else if (/^\{[A-Za-z_][A-Za-z0-9_]*\}$/.test(part)) {
        names.push(part.slice(1, -1));
        source += '([^/;]+)';
      } else source += escapeRegExp(part);
    }
    const re = new RegExp(`^${source}$`, 's');
    compiled = (path) => {
      const match = re.exec(path);
      if (!match) return undefined;
      const params: Record<string, string> = {};
      names.forEach((name, i) => {
        params[name] = decodeURIComponentSafe(match[i + 1] ?? '');
      });
      return params;
    };
    templateCache.set(template, compiled);
  }
  return compiled;
}

/** Matches a request path against a path template; the captured parameters, or undefined. */
export function matchPath(template: string, path: string): Record<string, string> | undefined {
  return compilePath(template)(path);
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** A port, a range such as `"8080-8089"`, or a list of either, as routes and listeners take them. */
export type PortSpec = number | string | readonly (number | string)[];

/** Whether a port is among those `spec` names. */
export function compilePorts(spec: PortSpec): (port: number) => boolean {
  const ranges = (Array.isArray(spec) ? spec : [spec]).map((item: number | string): [number, number] => {
    if (typeof item === 'number') return [item, item];
    const [from, to] = item.split('-').map(Number);
    // A string the schema lets through but that names no port matches none.
    if (from === undefined || Number.isNaN(from)) return [1, 0];
    return [from, to ?? from];
  });
  return (port) => ranges.some(([from, to]) => port >= from && port <= to);
}

/**
 * Whether an address is in the range `cidr` (`10.0.0.0/8`, `fd00::/8`). A range whose network is
 * no address matches nothing; a prefix longer than its family allows is refused.
 */
export function compileCidr(cidr: string): (address: string) => boolean {
  const [network, bits] = cidr.split('/');
  const family = isIP(network ?? '');
  if (family === 0 || bits === undefined) return () => false;
  const longest = family === 6 ? 128 : 32;
  if (Number(bits) > longest)
    throw new Error(`cidr ${cidr}: an IPv${family} prefix has at most ${longest} bits`);
  const list = new BlockList();
  list.addSubnet(network ?? '', Number(bits), family === 6 ? 'ipv6' : 'ipv4');
  return (address) => {
    const addressFamily = isIP(address);
    return addressFamily !== 0 && list.check(address, addressFamily === 6 ? 'ipv6' : 'ipv4');
  };
}
