import type { RouteConfig } from '../../config/index.ts';
import type { Condition, Filter } from '../kafka/cache_client/index.ts';

/**
 * Zilla's `${...}` templates as the http-kafka and sse-kafka proxies use them: `${params.id}` in
 * filters, keys and header overrides, `${idempotencyKey}` and `${correlationId}` in produce keys,
 * `${etag}` and `${base64(key)}` in SSE event ids. Templates are checked when the binding starts so
 * that a typo fails the config instead of every request.
 */

const EXPRESSION = /\$\{([^}]*)\}/g;

/** The expressions a template uses, in order, e.g. `params.id`. */
export function expressionsOf(template: string): string[] {
  return [...template.matchAll(EXPRESSION)].map((m) => (m[1] ?? '').trim());
}

export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateError';
  }
}

/** Replaces each `${name}` with `lookup(name)`; a name the lookup does not know is an error. */
export function expand(template: string, lookup: (name: string) => string | undefined): string {
  return template.replace(EXPRESSION, (_whole, inner: string) => {
    const name = inner.trim();
    const value = lookup(name);
    if (value === undefined) throw new TemplateError(`\${${name}} has no value for this request`);
    return value;
  });
}

/** A lookup for `params.*` names, falling back to `extra` for the others. */
export function paramsLookup(
  params: Readonly<Record<string, string>>,
  extra: Readonly<Record<string, string | undefined>> = {},
): (name: string) => string | undefined {
  return (name) => {
    if (name.startsWith('params.')) {
      const key = name.slice('params.'.length);
      return Object.hasOwn(params, key) ? params[key] : undefined;
    }
    return Object.hasOwn(extra, name) ? extra[name] : undefined;
  };
}

const PATH_PARAM = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/**
 * Path parameters every condition of the route captures: a route matches when any one condition
 * does, so only those are sure to be there whichever matched.
 */
export function capturedParams(route: RouteConfig): Set<string> {
  let common: Set<string> | undefined;
  for (const condition of route.when) {
    const path = condition['path'];
    const names = new Set(
      typeof path === 'string' ? [...path.matchAll(PATH_PARAM)].map((m) => m[1] ?? '') : [],
    );
    common = common === undefined ? names : new Set([...common].filter((n) => names.has(n)));
  }
  return common ?? new Set();
}

/**
 * Checks a template against what a request will supply. `allowed` holds the names other than
 * `params.*`; `params` the path parameters the route captures.
 */
export function checkTemplate(
  template: string,
  where: string,
  params: ReadonlySet<string>,
  allowed: readonly string[],
): void {
  for (const name of expressionsOf(template)) {
    if (name.startsWith('params.')) {
      const param = name.slice('params.'.length);
      if (!params.has(param))
        throw new Error(
          `${where}: \${${name}} is not a path parameter of every condition of this route ` +
            `(captured: ${params.size === 0 ? 'none' : [...params].join(', ')})`,
        );
    } else if (!allowed.includes(name)) {
      const known = ['params.<name>', ...allowed].map((n) => `\${${n}}`).join(', ');
      throw new Error(`${where}: unknown expression \${${name}}; known here: ${known}`);
    }
  }
}

/** One configured filter before substitution: a key and/or header values, all of which must hold. */
export interface FilterTemplate {
  readonly key?: string;
  readonly headers: readonly (readonly [string, string])[];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads `with.filters` (already schema-checked) and checks its templates. */
export function filterTemplates(raw: unknown, where: string, params: ReadonlySet<string>): FilterTemplate[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) throw new Error(`${where}: filters must be a list`);
  return raw.map((item: unknown, i) => {
    const at = `${where}.filters[${i}]`;
    if (!isRecord(item)) throw new Error(`${at}: a filter is an object with key and/or headers`);
    const key = item['key'];
    const headersRaw = item['headers'];
    if (key !== undefined && typeof key !== 'string') throw new Error(`${at}.key must be a string`);
    if (key !== undefined) checkTemplate(key, `${at}.key`, params, []);
    const headers: [string, string][] = [];
    if (headersRaw !== undefined) {
      if (!isRecord(headersRaw)) throw new Error(`${at}.headers must map names to values`);
      for (const [name, value] of Object.entries(headersRaw)) {
        if (typeof value !== 'string') throw new Error(`${at}.headers.${name} must be a string`);
        checkTemplate(value, `${at}.headers.${name}`, params, []);
        headers.push([name, value]);
      }
    }
    return key === undefined ? { headers } : { key, headers };
  });
}

/** The cache_client filters for one request: templates expanded with its path parameters. */
export function buildFilters(
  templates: readonly FilterTemplate[],
  params: Readonly<Record<string, string>>,
): Filter[] | undefined {
  if (templates.length === 0) return undefined;
  const lookup = paramsLookup(params);
  return templates.map((t) => {
    const conditions: Condition[] = [];
    if (t.key !== undefined) conditions.push({ key: Buffer.from(expand(t.key, lookup), 'utf8') });
    for (const [name, value] of t.headers)
      conditions.push({ header: { name, value: Buffer.from(expand(value, lookup), 'utf8') } });
    return conditions;
  });
}
