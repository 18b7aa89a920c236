import type { ResolvedRoute } from '../../config/index.ts';
import { admits, type Authorization } from '../../guards/index.ts';
import { guardedValue } from '../../guards/expressions.ts';
import { refuseCredentials } from '../north.ts';
import type { PathRoutes, RequestLine } from '../path-conditions.ts';

// What the proxies (http-kafka, sse-kafka, http-filesystem) do with a request's credentials:
// routes `guarded` by scopes, and `${guarded['<guard>'].identity}` in their templates.

/**
 * The route a request takes: guarded routes its credentials do not open are passed over, as in
 * Zilla; when nothing else takes it, a CredentialsError (401 or 403) is thrown, naming `what`.
 */
export function resolveGuarded(
  routes: PathRoutes,
  line: RequestLine,
  authorization: Authorization | undefined,
  what: string,
): ResolvedRoute | undefined {
  if (!routes.guarded) return routes.resolve(line);
  const { resolved, refused } = routes.resolveAdmitted(line, (route) => admits(route.guarded, authorization));
  if (resolved === undefined && refused !== undefined)
    throw refuseCredentials(authorization, Object.keys(refused.guarded ?? {})[0] ?? '', what);
  return resolved;
}

/**
 * The value of a `${guarded[...]}` expression for this request; without a session of that guard
 * (or with one lacking the claim) the request is refused, 401 or 403, rather than sent to Kafka
 * with a hole where the identity belongs.
 */
export function requireGuardedValue(expression: string, authorization: Authorization | undefined): string {
  const value = guardedValue(expression, authorization);
  if (value !== undefined) return value;
  const guard = /^guarded\['([^']*)'\]/.exec(expression)?.[1] ?? '';
  throw refuseCredentials(authorization, guard, `\${${expression}}`);
}
