import {
  compilePath,
  NO_PARAMS,
  RouteTable,
  type BindingConfig,
  type ConditionMatcher,
  type PathMatcher,
} from '../config/index.ts';
import { anyOfConditions } from '../config/core-schema.ts';
import type { JsonSchema } from '../config/json-schema.ts';

/**
 * Routes by request path (and method): the sse server and the sse-kafka and http-filesystem
 * proxies take path conditions, the http-kafka proxy method and path ones.
 */

/** The `when` of the sse server and the sse-kafka and http-filesystem proxies. */
export const PATH_DEFINITIONS: { readonly [name: string]: JsonSchema } = {
  pathConditions: anyOfConditions({
    path: {
      description:
        'Request path (without its query); `{name}` captures one or more characters, `/` included as Zilla does, as `${params.name}`; `*` matches any run of characters.',
      type: 'string',
    },
  }),
};

/** One `when` entry of a binding routing requests by method and path. */
export interface PathCondition {
  readonly method?: string;
  readonly path?: string;
}

/** What path conditions look at: the request's method and its path without the query. */
export interface RequestLine {
  readonly method: string;
  readonly path: string;
}

/** Matches a request's method (in any case) and path template, capturing the template's parameters. */
export class PathConditionMatcher implements ConditionMatcher<RequestLine> {
  readonly #method: string | undefined;
  readonly #path: PathMatcher | undefined;

  constructor(condition: PathCondition) {
    this.#method = condition.method?.toUpperCase();
    this.#path = condition.path === undefined ? undefined : compilePath(condition.path);
  }

  match(request: RequestLine): Readonly<Record<string, string>> | undefined {
    if (this.#method !== undefined && this.#method !== request.method.toUpperCase()) return undefined;
    return this.#path === undefined ? NO_PARAMS : this.#path(request.path);
  }
}

/** A binding's routes by request method and path. */
export type PathRoutes = RouteTable<RequestLine, PathCondition>;

/** The routes of a binding that routes requests by method and path. */
export function pathRoutes(binding: Pick<BindingConfig, 'name' | 'routes' | 'exit'>): PathRoutes {
  return new RouteTable(binding, (condition: PathCondition) => new PathConditionMatcher(condition));
}
