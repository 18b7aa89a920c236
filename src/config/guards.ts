import type { GuardConfig } from '../guards/index.ts';
import { isGuardedExpression, parseGuardedExpression } from '../guards/expressions.ts';
import { didYouMean } from './diagnostics.ts';
import type { ReferenceProblem } from './references.ts';
import { pointerOf, type Segment } from './source.ts';

/**
 * What the config says about guards, checked so that `validate` refuses what `start` could not
 * enforce: every guard an http server's `authorization` or a route's `guarded` names exists, routes
 * are `guarded` only on bindings that enforce it (a guard kgate would ignore is a route left open),
 * and every `${guarded[...]}` in a route's `with` names a guard, and an attribute it offers, in a
 * binding that resolves it per request.
 */

/** Binding types whose routes take `guarded`: they route HTTP requests that carry credentials. */
export const GUARDED_TYPES: ReadonlySet<string> = new Set([
  'http',
  'sse',
  'http-kafka',
  'sse-kafka',
  'http-filesystem',
]);

/** Binding types that resolve `${guarded[...]}` in their routes' `with`. */
const IDENTITY_TYPES: ReadonlySet<string> = new Set(['http-kafka', 'sse-kafka']);

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The top-level `guards`, as validated by the schema. */
export function toGuards(raw: unknown): Map<string, GuardConfig> {
  const guards = new Map<string, GuardConfig>();
  if (!isObject(raw)) return guards;
  for (const [name, guard] of Object.entries(raw)) {
    if (!isObject(guard)) continue;
    const options = isObject(guard['options']) ? guard['options'] : {};
    guards.set(name, { name, type: String(guard['type']), options });
  }
  return guards;
}

const EXPRESSION = /\$\{([^}]*)\}/g;

/** Every string under `value`, with where it is. */
function* strings(value: unknown, segments: Segment[]): Generator<[string, Segment[]]> {
  if (typeof value === 'string') yield [value, segments];
  else if (Array.isArray(value))
    for (let i = 0; i < value.length; i++) yield* strings(value[i], [...segments, i]);
  else if (isObject(value))
    for (const [key, item] of Object.entries(value)) yield* strings(item, [...segments, key]);
}

export function checkGuards(data: Record<string, unknown>): ReferenceProblem[] {
  const guards = toGuards(data['guards']);
  const names = [...guards.keys()];
  const problems: ReferenceProblem[] = [];
  const problem = (segments: Segment[], message: string): void => {
    problems.push({ pointer: pointerOf(segments), message });
  };
  const verifiers = names.filter((name) => guards.get(name)?.type === 'jwt');
  const unknownGuard = (name: string): string => {
    const type = guards.get(name)?.type;
    if (type !== undefined)
      return `guard ${name} is of type ${type}, which verifies no request (a jwt guard does)`;
    return verifiers.length === 0
      ? `no jwt guard named "${name}": the config has none`
      : `no guard named "${name}"${didYouMean(name, verifiers)}`;
  };
  const isVerifier = (name: string): boolean => guards.get(name)?.type === 'jwt';

  const bindings = isObject(data['bindings']) ? data['bindings'] : {};
  for (const [bindingName, binding] of Object.entries(bindings)) {
    if (!isObject(binding)) continue;
    const type = String(binding['type']);
    const written = isObject(binding['options']) ? binding['options'] : {};
    // A kafka client's `authorization` names the guard its own credentials come from: not ours.
    const authorization = type === 'http' ? written['authorization'] : undefined;
    if (isObject(authorization)) {
      for (const guard of Object.keys(authorization))
        if (!isVerifier(guard))
          problem(['bindings', bindingName, 'options', 'authorization', guard], unknownGuard(guard));
    }
    const routes = Array.isArray(binding['routes']) ? (binding['routes'] as unknown[]) : [];
    routes.forEach((route, index) => {
      if (!isObject(route)) return;
      const at: Segment[] = ['bindings', bindingName, 'routes', index];
      const guarded = route['guarded'];
      if (isObject(guarded)) {
        if (!GUARDED_TYPES.has(type)) {
          problem(
            [...at, 'guarded'],
            `${type} bindings do not enforce guarded routes (only ${[...GUARDED_TYPES].join(', ')} do); ` +
              'kgate refuses the config rather than leave the route open',
          );
        }
        for (const guard of Object.keys(guarded))
          if (!isVerifier(guard)) problem([...at, 'guarded', guard], unknownGuard(guard));
      }
      for (const [text, segments] of strings(route['with'], [...at, 'with'])) {
        for (const match of text.matchAll(EXPRESSION)) {
          const expression = (match[1] ?? '').trim();
          if (!isGuardedExpression(expression)) continue;
          const parsed = parseGuardedExpression(expression);
          const shown = `\${${expression}}`;
          if (parsed === undefined) {
            problem(
              segments,
              `${shown} is not a guard expression kgate knows: write \${guarded['<guard>'].identity} or \${guarded['<guard>'].attributes.<name>}`,
            );
          } else if (!IDENTITY_TYPES.has(type)) {
            problem(
              segments,
              `${shown}: ${type} bindings do not resolve guard expressions (http-kafka and sse-kafka do)`,
            );
          } else if (!isVerifier(parsed.guard)) {
            problem(segments, `${shown}: ${unknownGuard(parsed.guard)}`);
          } else if (parsed.part === 'attribute') {
            const guardOptions: Readonly<Record<string, unknown>> = guards.get(parsed.guard)?.options ?? {};
            const offered = guardOptions.attributes;
            const attributes = isObject(offered) ? Object.keys(offered) : [];
            if (!attributes.includes(parsed.attribute))
              problem(
                segments,
                `${shown}: guard ${parsed.guard} has no attribute "${parsed.attribute}"` +
                  (attributes.length === 0
                    ? ' (it lists no attributes)'
                    : didYouMean(parsed.attribute, attributes)),
              );
          }
        }
      }
    });
  }
  return problems;
}
