import { BlockList, isIP } from 'node:net';
import type { BindingConfig, RouteConfig } from './index.ts';

/**
 * Route matching. `facts` describe the stream being routed, flat and stringly typed so that every binding
 * kind can use the same call:
 *   topic                                    kafka: topic name
 *   method, path                             http-kafka / sse-kafka / sse: request method and path (no query)
 *   ":scheme", ":authority", ":path", ...    http: request headers by lower-case name
 *   address, port, authority, alpn           tcp / tls: remote address, local port, requested host, ALPN
 * A route matches when any of its `when` conditions matches (or it has none); a condition matches when all
 * of its entries do.
 */

const globCache = new Map<string, RegExp>();

function escapeRegExp(text: string): string {
  return text.replace(/[.+^${}()|[\]\\/?*]/g, '\\$&');
}

function globRegExp(pattern: string, flags = ''): RegExp {
  const cacheKey = `${flags}:${pattern}`;
  let re = globCache.get(cacheKey);
  if (!re) {
    const source = [...pattern].map((c) => (c === '*' ? '.*' : c === '?' ? '.' : escapeRegExp(c))).join('');
    re = new RegExp(`^${source}$`, `s${flags}`);
    globCache.set(cacheKey, re);
  }
  return re;
}

/** Glob match: `*` is any run of characters (including none), `?` exactly one; everything else is literal. */
export function matchTopic(pattern: string, topic: string): boolean {
  return globRegExp(pattern).test(topic);
}

const templateCache = new Map<string, { re: RegExp; names: string[] }>();

/**
 * Matches a request path against a Zilla path template: `{name}` captures one segment (up to `/` or `;`),
 * `*` matches any run of characters. Returns the captured parameters, or undefined when it does not match.
 */
export function matchPath(template: string, path: string): Record<string, string> | undefined {
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
    compiled = { re: new RegExp(`^${source}$`, 's'), names };
    templateCache.set(template, compiled);
  }
  const match = compiled.re.exec(path);
  if (!match) return undefined;
  const params: Record<string, string> = {};
  compiled.names.forEach((name, i) => {
    params[name] = decodeURIComponentSafe(match[i + 1] ?? '');
  });
  return params;
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function portMatches(spec: unknown, port: number): boolean {
  if (Array.isArray(spec)) return spec.some((s) => portMatches(s, port));
  if (typeof spec === 'number') return spec === port;
  if (typeof spec === 'string') {
    const [from, to] = spec.split('-').map(Number);
    if (from === undefined || Number.isNaN(from)) return false;
    return port >= from && port <= (to ?? from);
  }
  return false;
}

function cidrMatches(cidr: string, address: string): boolean {
  const [network, bits] = cidr.split('/');
  const family = isIP(network ?? '');
  const addressFamily = isIP(address);
  if (family === 0 || addressFamily === 0 || bits === undefined) return false;
  const list = new BlockList();
  list.addSubnet(network ?? '', Number(bits), family === 6 ? 'ipv6' : 'ipv4');
  return list.check(address, addressFamily === 6 ? 'ipv6' : 'ipv4');
}

/** The path parameters if the condition matches, undefined if it does not. */
export function matchCondition(
  condition: Record<string, unknown>,
  facts: Readonly<Record<string, string>>,
): Record<string, string> | undefined {
  let params: Record<string, string> = {};
  for (const [key, expected] of Object.entries(condition)) {
    if (key === 'headers') {
      if (typeof expected !== 'object' || expected === null) return undefined;
      for (const [name, pattern] of Object.entries(expected)) {
        const actual = facts[name.toLowerCase()];
        if (actual === undefined || !globRegExp(String(pattern)).test(actual)) return undefined;
      }
      continue;
    }
    const actual = key === 'cidr' ? facts['address'] : facts[key];
    if (actual === undefined) return undefined;
    switch (key) {
      case 'path': {
        const captured = matchPath(String(expected), actual);
        if (!captured) return undefined;
        params = { ...params, ...captured };
        break;
      }
      case 'method':
        if (String(expected).toUpperCase() !== actual.toUpperCase()) return undefined;
        break;
      case 'port':
        if (!portMatches(expected, Number(actual))) return undefined;
        break;
      case 'cidr':
        if (!cidrMatches(String(expected), actual)) return undefined;
        break;
      case 'authority':
        if (!globRegExp(String(expected), 'i').test(actual)) return undefined;
        break;
      default:
        if (!globRegExp(String(expected)).test(actual)) return undefined;
    }
  }
  return params;
}

export interface ResolvedRoute {
  exit: string;
  /** The matched route; absent when the binding's default `exit` was taken. */
  route?: RouteConfig;
  /** Path parameters captured by the matched condition, for `${params.name}` templates. */
  params: Record<string, string>;
}

/** First matching route wins; the binding's `exit` is the fallback. */
export function resolveRoute(
  binding: BindingConfig,
  facts: Readonly<Record<string, string>>,
): ResolvedRoute | undefined {
  for (const route of binding.routes) {
    if (route.when.length === 0) return { exit: route.exit, route, params: {} };
    for (const condition of route.when) {
      const params = matchCondition(condition, facts);
      if (params) return { exit: route.exit, route, params };
    }
  }
  return binding.exit === undefined ? undefined : { exit: binding.exit, params: {} };
}

export function resolveExit(binding: BindingConfig, facts: Record<string, string>): string | undefined {
  return resolveRoute(binding, facts)?.exit;
}
