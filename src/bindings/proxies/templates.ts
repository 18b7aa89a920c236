import type { RouteConfig } from '../../config/index.ts';
import { KgateError } from '../../engine/errors.ts';
import type { Authorization } from '../../guards/index.ts';
import { isGuardedExpression } from '../../guards/expressions.ts';
import { requireGuardedValue } from './guarded.ts';

/**
 * Zilla's `${...}` templates as the proxies use them: `${params.id}` in filters, keys, header
 * overrides and file paths, `${idempotencyKey}` and `${correlationId}` in produce keys,
 * `${etag}` and `${base64(key)}` in SSE event ids. Templates are checked when the binding starts so
 * that a typo fails the config instead of every request.
 */

const EXPRESSION = /\$\{([^}]*)\}/g;

/** The expressions a template uses, in order, e.g. `params.id`. */
export function expressionsOf(template: string): string[] {
  return [...template.matchAll(EXPRESSION)].map((m) => (m[1] ?? '').trim());
}

export class TemplateError extends KgateError {
  constructor(message: string) {
    super('KGATE_TEMPLATE_NO_VALUE', message);
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

/**
 * A lookup for `params.*` names and `guarded[...]` ones (from `authorization`), falling back to
 * `extra` for the others.
 */
export function paramsLookup(
  params: Readonly<Record<string, string>>,
  extra: Readonly<Record<string, string | undefined>> = {},
  authorization?: Authorization,
): (name: string) => string | undefined {
  return (name) => {
    if (isGuardedExpression(name)) return requireGuardedValue(name, authorization);
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
    // Checked against the config's guards when it loads (config/guards.ts).
    if (isGuardedExpression(name)) continue;
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
