import type { Authorization } from './guard.ts';

/**
 * `${guarded['<guard>'].identity}` and `${guarded['<guard>'].attributes.<name>}`, as Zilla's
 * sse-kafka and http-kafka bindings read them in a route's `with`: the identity (or an attribute)
 * of the session the named guard made from the request's credentials.
 */

export type GuardedExpression =
  | { readonly guard: string; readonly part: 'identity' }
  | { readonly guard: string; readonly part: 'attribute'; readonly attribute: string };

const NAME = '[a-zA-Z]+[a-zA-Z0-9._:-]*';
const IDENTITY = new RegExp(`^guarded\\['(${NAME})'\\]\\.identity$`);
const ATTRIBUTE = new RegExp(`^guarded\\['(${NAME})'\\]\\.attributes\\.(${NAME})$`);

/** Whether a template expression (the text between `${` and `}`) is about a guard at all. */
export function isGuardedExpression(expression: string): boolean {
  return expression.startsWith('guarded[') || expression.startsWith('guarded.');
}

/** The expression's guard and part, or undefined when it is not one of the two shapes. */
export function parseGuardedExpression(expression: string): GuardedExpression | undefined {
  const identity = IDENTITY.exec(expression);
  if (identity !== null) return { guard: identity[1] ?? '', part: 'identity' };
  const attribute = ATTRIBUTE.exec(expression);
  if (attribute !== null)
    return { guard: attribute[1] ?? '', part: 'attribute', attribute: attribute[2] ?? '' };
  return undefined;
}

/**
 * The value of a guarded expression for one request: undefined when the request has no session of
 * that guard, or the session lacks the identity claim or the attribute.
 */
export function guardedValue(
  expression: string,
  authorization: Authorization | undefined,
): string | undefined {
  const parsed = parseGuardedExpression(expression);
  const session = authorization?.session;
  if (parsed === undefined || session === undefined || session.guard !== parsed.guard) return undefined;
  if (parsed.part === 'identity') return session.identity;
  return Object.hasOwn(session.attributes, parsed.attribute)
    ? session.attributes[parsed.attribute]
    : undefined;
}
