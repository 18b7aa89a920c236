import type { BindingConfig, RouteConfig } from '../../config/index.ts';
import type { Acks } from '../kafka/cache_client/index.ts';
import type { Authorization } from '../../guards/index.ts';
import { pathRoutes, type PathRoutes } from '../path-conditions.ts';
import { resolveGuarded } from '../proxies/guarded.ts';
import { filterTemplates, type FilterTemplate } from '../proxies/filter-templates.ts';
import { kafkaTimeoutMs } from '../proxies/kafka-timeout.ts';
import { capturedParams, checkTemplate } from '../proxies/templates.ts';
import { compileTopic, type TopicTemplate } from '../proxies/topic-template.ts';
import {
  contentTypePolicy,
  DEFAULT_CONTENT_TYPES,
  type ContentTypePolicy,
  type ReplacedHook,
} from './content-types.ts';

// The binding's routes: each route's `with` read and checked once at start, and the route a
// request takes, HEAD falling back to GET.

export const PRODUCE_METHODS = ['POST', 'PUT', 'PATCH', 'DELETE'];
const FETCH_METHODS = ['GET', 'HEAD'];
const REQUEST_REPLY_METHODS = [...PRODUCE_METHODS, 'GET'];
const ACKS: Record<string, Acks> = { none: 0, leader_only: 1, in_sync_replicas: -1 };

export interface FetchRoute {
  readonly capability: 'fetch';
  readonly exit: string;
  /** The topic: the template's, or what a request's path parameters made of it (withTopic). */
  readonly topic: string;
  readonly topicTemplate: TopicTemplate;
  readonly filters: readonly FilterTemplate[];
  /** Content type of the merged document; absent: answer the one latest matching message. */
  readonly merge?: string;
  /** Which content types the latest message may be answered with as it stored them. */
  readonly contentTypes: ContentTypePolicy;
  /** How long each wait for Kafka may take (`kafka-timeout`). */
  readonly kafkaTimeoutMs: number;
}

export interface ProduceRoute {
  readonly capability: 'produce';
  readonly exit: string;
  /** The topic: the template's, or what a request's path parameters made of it (withTopic). */
  readonly topic: string;
  readonly topicTemplate: TopicTemplate;
  readonly key?: string;
  readonly overrides: readonly (readonly [string, string])[];
  readonly acks?: Acks;
  /** Set when the route answers `Prefer: respond-async` with 202; the location may be absent. */
  readonly async?: { readonly location?: string };
  /** Topic the correlated reply comes back on; the request then answers with the reply. */
  readonly replyTo?: string;
  /**
   * The Kafka header the produced request carries its correlation id under, when not the
   * binding's (`with.correlation-id`, as Zilla reads it); replies are matched by the binding's.
   */
  readonly correlationIdHeader?: string;
  /**
   * Whether the key or an override uses `${correlationId}`: the id is then needed before the body,
   * so it is a fresh one per request rather than derived from the request (a kgate extension).
   */
  readonly correlationIdFirst: boolean;
  /** Which content types a reply may be answered with as it stored them. */
  readonly contentTypes: ContentTypePolicy;
  /** How long each wait for Kafka may take (`kafka-timeout`), before the body and after it. */
  readonly kafkaTimeoutMs: number;
}

export type CompiledRoute = FetchRoute | ProduceRoute;

function str(value: unknown, where: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new Error(`${where} must be a string`);
  return value;
}

function compileRoute(route: RouteConfig, index: number, onReplaced?: ReplacedHook): CompiledRoute {
  const where = `routes[${index}].with`;
  const w = route.with ?? {};
  const topic = str(w['topic'], `${where}.topic`);
  if (topic === undefined) throw new Error(`${where}.topic is required`);
  const params = capturedParams(route);
  const topicTemplate = compileTopic(topic, `${where}.topic`, params);
  const listed = w['content-types'] as readonly string[] | undefined;
  const contentTypes = contentTypePolicy(
    listed ?? DEFAULT_CONTENT_TYPES,
    `${where}.content-types`,
    onReplaced,
  );
  const waits = kafkaTimeoutMs(w['kafka-timeout'], `${where}.kafka-timeout`);
  if (w['capability'] === 'fetch') {
    const merge = w['merge'] as Record<string, unknown> | undefined;
    const contentType =
      merge === undefined ? undefined : str(merge['content-type'], `${where}.merge.content-type`);
    const patch = merge?.['patch'] as Record<string, unknown> | undefined;
    // Only the one merge Zilla configs use in practice: every message appended to an array.
    if (patch !== undefined) {
      const initial = str(patch['initial'], `${where}.merge.patch.initial`) ?? '[]';
      const path = str(patch['path'], `${where}.merge.patch.path`) ?? '/-';
      if (initial.replace(/\s/g, '') !== '[]' || path !== '/-')
        throw new Error(`${where}.merge.patch: only initial "[]" with path "/-" is supported`);
    }
    const filters = filterTemplates(w['filters'], where, params);
    return {
      capability: 'fetch',
      exit: route.exit,
      topic,
      topicTemplate,
      filters,
      ...(contentType === undefined ? {} : { merge: contentType }),
      contentTypes,
      kafkaTimeoutMs: waits,
    };
  }
  const produceNames = ['idempotencyKey', 'correlationId'];
  const replyTo = str(w['reply-to'], `${where}.reply-to`);
  const correlationIdHeader = str(w['correlation-id'], `${where}.correlation-id`);
  if (correlationIdHeader !== undefined && replyTo === undefined)
    throw new Error(`${where}.correlation-id: only a route with reply-to correlates replies`);
  const key = str(w['key'], `${where}.key`);
  if (key !== undefined) checkTemplate(key, `${where}.key`, params, produceNames);
  const overrides: [string, string][] = [];
  const rawOverrides = w['overrides'];
  if (rawOverrides !== undefined) {
    for (const [name, value] of Object.entries(rawOverrides as Record<string, unknown>)) {
      const text = str(value, `${where}.overrides.${name}`) ?? '';
      checkTemplate(text, `${where}.overrides.${name}`, params, produceNames);
      overrides.push([name, text]);
    }
  }
  const acksName = str(w['acks'], `${where}.acks`);
  const acks = acksName === undefined ? undefined : ACKS[acksName];
  const asyncRaw = w['async'] as Record<string, unknown> | undefined;
  const location = asyncRaw === undefined ? undefined : str(asyncRaw['location'], `${where}.async.location`);
  if (location !== undefined) checkTemplate(location, `${where}.async.location`, params, produceNames);
  return {
    capability: 'produce',
    exit: route.exit,
    topic,
    topicTemplate,
    overrides,
    contentTypes,
    kafkaTimeoutMs: waits,
    ...(key === undefined ? {} : { key }),
    ...(acks === undefined ? {} : { acks }),
    ...(asyncRaw === undefined ? {} : { async: location === undefined ? {} : { location } }),
    ...(replyTo === undefined ? {} : { replyTo }),
    ...(correlationIdHeader === undefined ? {} : { correlationIdHeader }),
    correlationIdFirst: [key ?? '', ...overrides.map(([, value]) => value)].some((t) =>
      t.includes('${correlationId}'),
    ),
  };
}

/**
 * The route with the topic a request's path parameters and session make; throws a TopicNameError
 * (404) when they make an illegal name.
 */
export function withTopic<R extends CompiledRoute>(
  route: R,
  params: Readonly<Record<string, string>>,
  authorization?: Authorization,
): R {
  return route.topicTemplate.templated
    ? { ...route, topic: route.topicTemplate.resolve(params, authorization) }
    : route;
}

/** The methods a route answers: GET on a request-reply route polls for the reply of an earlier async request. */
export function allowedMethods(route: CompiledRoute): readonly string[] {
  if (route.capability === 'fetch') return FETCH_METHODS;
  return route.replyTo === undefined ? PRODUCE_METHODS : REQUEST_REPLY_METHODS;
}

export interface ResolvedRoute {
  readonly route: CompiledRoute;
  readonly params: Readonly<Record<string, string>>;
}

/** The compiled routes of one binding config; empty until the binding starts. */
export class RouteTable {
  readonly #matchers: PathRoutes;
  readonly #routes: ReadonlyMap<RouteConfig, CompiledRoute>;

  constructor(config: BindingConfig, routes: ReadonlyMap<RouteConfig, CompiledRoute> = new Map()) {
    this.#matchers = pathRoutes(config);
    this.#routes = routes;
  }

  /**
   * Compiles every route of `config`; throws naming the first route that is wrong. `onReplaced`
   * hears of each stored content type a route answers as `application/octet-stream` instead.
   */
  static compile(config: BindingConfig, onReplaced?: ReplacedHook): RouteTable {
    const routes = new Map<RouteConfig, CompiledRoute>();
    config.routes.forEach((route, i) => routes.set(route, compileRoute(route, i, onReplaced)));
    return new RouteTable(config, routes);
  }

  /**
   * The route a request takes; HEAD takes the routes of GET unless a route names HEAD itself.
   * Guarded routes the request's credentials do not open are passed over; when only such routes
   * take the path, a CredentialsError (401, 403) is thrown.
   */
  resolve(method: string, path: string, authorization?: Authorization): ResolvedRoute | undefined {
    for (const candidate of method === 'HEAD' ? ['HEAD', 'GET'] : [method]) {
      const line = { method: candidate, path };
      const resolved = resolveGuarded(this.#matchers, line, authorization, `${method} ${path}`);
      const route = resolved?.route === undefined ? undefined : this.#routes.get(resolved.route);
      if (resolved !== undefined && route !== undefined) return { route, params: resolved.params };
    }
    return undefined;
  }

  /** The methods some route takes on `path`: a request with another one gets 405, not 404. */
  methodsOn(path: string): string[] {
    // Guards aside: a method only a guarded route takes is still one the path takes.
    return [...FETCH_METHODS, ...PRODUCE_METHODS].filter((method) =>
      (method === 'HEAD' ? ['HEAD', 'GET'] : [method]).some((candidate) => {
        const resolved = this.#matchers.resolve({ method: candidate, path });
        const route = resolved?.route === undefined ? undefined : this.#routes.get(resolved.route);
        return route !== undefined && allowedMethods(route).includes(method);
      }),
    );
  }
}
