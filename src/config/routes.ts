import { BlockList, isIP } from 'node:net';
import type { BindingConfig, RouteConfig } from './index.ts';
import { ANY, compilePattern, type Pattern, type Piece } from './patterns.ts';

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

  /**
   * Like resolve, passing over the routes `admit` refuses (guarded routes the request's credentials
   * do not open: the next route may take it, as in Zilla). `refused` is the first route passed
   * over, given when nothing took the subject, so that the binding can say why (401, 403).
   */
  resolveAdmitted(
    subject: S,
    admit: (route: RouteConfig) => boolean,
  ): { readonly resolved?: ResolvedRoute; readonly refused?: RouteConfig } {
    let refused: RouteConfig | undefined;
    for (const { route, conditions } of this.#routes) {
      let params: Readonly<Record<string, string>> | undefined =
        conditions.length === 0 ? NO_PARAMS : undefined;
      for (let i = 0; params === undefined && i < conditions.length; i++)
        params = conditions[i]?.match(subject);
      if (params === undefined) continue;
      if (admit(route)) return { resolved: { exit: route.exit, route, params } };
      refused ??= route;
    }
    if (this.#exit !== undefined) return { resolved: { exit: this.#exit, params: NO_PARAMS } };
    return refused === undefined ? {} : { refused };
  }

  /** Whether any route is `guarded`: only then does routing need the request's credentials. */
  get guarded(): boolean {
    return this.#routes.some(({ route }) => route.guarded !== undefined);
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

const globCache = new Map<string, Pattern>();

/**
 * Glob: `*` is any run of characters (including none), `?` exactly one; everything else is literal.
 * Matched without backtracking (see patterns.ts): header values and SNI names are the client's.
 */
export function compileGlob(pattern: string, ignoreCase = false): Pattern {
  const cacheKey = `${ignoreCase ? 'i' : ''}:${pattern}`;
  let compiled = globCache.get(cacheKey);
  if (!compiled) {
    const pieces: Piece[] = [];
    let literal = '';
    for (const c of pattern) {
      if (c !== '*' && c !== '?') {
        literal += c;
        continue;
      }
      if (literal !== '') pieces.push({ literal });
      literal = '';
      pieces.push(c === '*' ? { many: ANY, min: 0 } : { one: ANY });
    }
    if (literal !== '') pieces.push({ literal });
    compiled = compilePattern(pieces, { ignoreCase });
    globCache.set(cacheKey, compiled);
  }
  return compiled;
}

/** Whether `topic` matches the glob `pattern`. */
export function matchTopic(pattern: string, topic: string): boolean {
  return compileGlob(pattern).test(topic);
}

/** A compiled path template: the parameters a path captures, or undefined when it does not match. */
export type PathMatcher = (path: string) => Record<string, string> | undefined;

const templateCache = new Map<string, PathMatcher>();

/**
 * Compiles a Zilla path template as Zilla does: `{name}` captures a run of one or more characters,
 * `/` included (Zilla compiles it to `(?<name>.+)`), so `/{path}` takes `/a/b/c.html`; `*`
 * matches any run of characters. Where a path could split in several ways, each parameter takes
 * as much as it can, as Java's regex does. A parameter is percent-decoded; one that does not
 * decode (`%zz`, or bytes that are not UTF-8, overlong forms included) makes the path match
 * nothing, since keeping it undecoded would give two spellings the same value (`%zz` and `%25zz`).
 */
export function compilePath(template: string): PathMatcher {
  let compiled = templateCache.get(template);
  if (!compiled) {
    const { names, pieces } = pathPieces(template);
    const pattern = compilePattern(pieces);
    compiled = (path) => {
      const captured = pattern.exec(path);
      if (captured === undefined) return undefined;
      const params: Record<string, string> = {};
      for (let i = 0; i < names.length; i++) {
        const value = decodeParam(captured[i] ?? '');
        if (value === undefined) return undefined;
        params[names[i] ?? ''] = value;
      }
      return params;
    };
    templateCache.set(template, compiled);
  }
  return compiled;
}

/** The pieces of a path template: `{name}` a run of one or more characters, `*` of any. */
function pathPieces(template: string): { names: string[]; pieces: Piece[] } {
  const names: string[] = [];
  const pieces: Piece[] = [];
  for (const part of template.split(/(\{[A-Za-z_][A-Za-z0-9_]*\}|\*)/)) {
    if (part === '*') pieces.push({ many: ANY, min: 0 });
    else if (/^\{[A-Za-z_][A-Za-z0-9_]*\}$/.test(part)) {
      names.push(part.slice(1, -1));
      pieces.push({ many: ANY, min: 1, capture: true });
    } else if (part !== '') pieces.push({ literal: part });
  }
  return { names, pieces };
}

const pathHeaderCache = new Map<string, Pattern>();

/**
 * An http server's `:path` header condition, as Zilla's http binding matches it: the value is a
 * path template (`{name}` and `*`) matched against the request target as sent, query included,
 * and unless the template ends with `*` a query string may follow what it matches, so
 * `/events` takes `/events?access_token=...`.
 */
export function compilePathHeader(template: string): Pattern {
  let compiled = pathHeaderCache.get(template);
  if (compiled === undefined) {
    const { pieces } = pathPieces(template);
    const exact = compilePattern(pieces);
    const withQuery = template.endsWith('*')
      ? undefined
      : compilePattern([...pieces, { literal: '?' }, { many: ANY, min: 0 }]);
    compiled = {
      exec: (subject) => exact.exec(subject) ?? withQuery?.exec(subject),
      test: (subject) => exact.test(subject) || withQuery?.test(subject) === true,
    };
    pathHeaderCache.set(template, compiled);
  }
  return compiled;
}

/** Matches a request path against a path template; the captured parameters, or undefined. */
export function matchPath(template: string, path: string): Record<string, string> | undefined {
  return compilePath(template)(path);
}

function decodeParam(text: string): string | undefined {
  if (!text.includes('%')) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
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
