import type { IncomingMessage } from 'node:http';
import { compilePath, type PathMatcher } from '../../config/index.ts';
import { createCatalog, type Catalog } from '../../models/catalog.ts';
import type { CatalogsJson } from '../../models/config.ts';
import { TopicModel } from '../../models/topic-model.ts';
import type { HttpRequestRuleJson } from './options.ts';

/** A request the server's `requests` refuse before any route sees it, and why. */
export interface RequestRefusal {
  readonly message: string;
}

/** One entry of `requests`, compiled. */
export class RequestRule {
  readonly #path: PathMatcher;
  readonly #method: string | undefined;
  readonly #contentTypes: readonly string[] | undefined;
  /** The model the body must fit; validated as a topic value is before it is produced. */
  readonly content: TopicModel | undefined;
  readonly #describe: string;

  constructor(json: HttpRequestRuleJson, catalogs: ReadonlyMap<string, Catalog>) {
    this.#path = compilePath(json.path);
    this.#method = json.method;
    this.#contentTypes = json['content-type']?.map((type) => type.toLowerCase());
    this.content =
      json.content === undefined ? undefined : new TopicModel(json.content, catalogs, json.path, 'value');
    this.#describe = `${json.method ?? 'any method'} ${json.path}`;
  }

  matches(method: string, path: string): boolean {
    return (this.#method === undefined || this.#method === method) && this.#path(path) !== undefined;
  }

  /** Why the request's content type is not one the rule takes, if it is not. */
  contentTypeProblem(contentType: string | undefined): RequestRefusal | undefined {
    if (this.#contentTypes === undefined) return undefined;
    const type = contentType?.split(';')[0]?.trim().toLowerCase();
    if (type !== undefined && this.#contentTypes.includes(type)) return undefined;
    return {
      message: `${this.#describe} takes content-type ${this.#contentTypes.join(', ')}, not ${type === undefined || type === '' ? 'none' : type}`,
    };
  }
}

/**
 * An http server's `requests`: the first entry whose method and path match a request applies
 * to it. Bodies are checked whole, before the route's handler reads them.
 */
export class RequestRules {
  readonly #rules: readonly RequestRule[];

  constructor(rules: readonly HttpRequestRuleJson[], catalogs: CatalogsJson, configFile?: string) {
    const built = new Map<string, Catalog>();
    if (rules.some((rule) => rule.content !== undefined))
      for (const [name, json] of Object.entries(catalogs))
        built.set(name, createCatalog(name, json, configFile));
    this.#rules = rules.map((rule) => new RequestRule(rule, built));
  }

  get size(): number {
    return this.#rules.length;
  }

  ruleFor(method: string, path: string): RequestRule | undefined {
    const bare = path.split('?')[0] ?? path;
    return this.#rules.find((rule) => rule.matches(method, bare));
  }
}

/** Whether a request comes with a body, which a refusal before it is read leaves on the connection. */
export function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** A body already read whole, as the chunks a handler iterates. */
export async function* oneChunk(body: Buffer): AsyncIterable<Buffer> {
  if (body.length > 0) yield body;
}
