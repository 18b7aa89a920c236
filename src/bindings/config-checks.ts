import type { BindingConfig } from '../config/index.ts';
import { connectionRoutes } from './connection-conditions.ts';
import { compileRoute as compileFileRoute } from './http-filesystem/proxy.ts';
import { RouteTable as HttpKafkaRoutes } from './http-kafka/routes.ts';
import { headerRoutes } from './http/header-conditions.ts';
import { httpServerOptions } from './http/options.ts';
import { parseVersions } from './http/versions.ts';
import { topicRoutes } from './kafka/topic-conditions.ts';
import { pathRoutes } from './path-conditions.ts';
import { compileRoute as compileSseRoute } from './sse-kafka/proxy.ts';
import { tcpServerOptions } from './tcp/options.ts';
import { parsePorts } from './tcp/server.ts';

/**
 * What `kgate start` checks of a config when it builds and starts the bindings, run when the
 * config is loaded, so that `kgate validate` refuses what `start` would, with the place in the
 * file: an exit of a kind that cannot take what the binding sends it, a route condition or a
 * route's `with` that does not compile (templates naming what a request will not have, illegal
 * topic names, event ids that cannot be resumed from, merges kgate does not make), option
 * values the schema admits but that mean nothing (an empty port range, no HTTP version), and kinds
 * the schema admits so that Zilla files load but that kgate cannot run. Each
 * check is the very code the binding runs at start, not a second description of it.
 */

/** A problem at a path inside the config, from its root. */
export interface BindingProblem {
  readonly segments: readonly (string | number)[];
  readonly message: string;
}

/** What a binding serves to the bindings whose exit it is, and what it needs of its own exits. */
type Role =
  'connections' | 'http' | 'event streams' | 'streams' | 'cache_client' | 'cache_server' | 'kafka' | 'files';

const ROLE_TEXT: Record<Role, string> = {
  connections: 'accept connections',
  http: 'serve HTTP requests',
  'event streams': 'serve event streams',
  streams: 'accept the stream of a fan',
  cache_client: 'read topics as a kafka cache_client',
  cache_server: 'cache topics as a kafka cache_server',
  kafka: 'reach Kafka as a kafka client',
  files: 'serve files (not a filesystem server)',
};

interface KindChecks {
  /** Set for a kind the schema admits so that Zilla files load, but that kgate cannot run: why. */
  readonly cannotRun?: string;
  readonly provides?: Role | readonly Role[];
  /** What every exit (routes' and default) must provide. */
  readonly exits?: Role;
  /** Throws what the binding's construction or start throws for this config. */
  readonly check?: (config: BindingConfig) => void;
}

function within(where: string, run: () => void): void {
  try {
    run();
  } catch (error) {
    throw new Error(`${where}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

const KINDS: Readonly<Record<string, KindChecks>> = {
  'tcp server': {
    exits: 'connections',
    check: (config) => {
      connectionRoutes(config);
      within('options.port', () => parsePorts(tcpServerOptions(config.options).port));
    },
  },
  'tls server': {
    provides: 'connections',
    exits: 'connections',
    check: (config) => connectionRoutes(config),
  },
  'http server': {
    provides: 'connections',
    exits: 'http',
    check: (config) => {
      headerRoutes(config);
      within('options.versions', () => parseVersions(httpServerOptions(config.options).versions));
    },
  },
  'sse server': { provides: 'http', exits: 'event streams', check: (config) => pathRoutes(config) },
  'sse-kafka proxy': {
    provides: 'event streams',
    exits: 'cache_client',
    check: (config) => {
      pathRoutes(config);
      config.routes.forEach((route, i) => compileSseRoute(route, i));
    },
  },
  'http-kafka proxy': {
    provides: 'http',
    exits: 'cache_client',
    check: (config) => HttpKafkaRoutes.compile(config),
  },
  'http-filesystem proxy': {
    provides: 'http',
    exits: 'files',
    check: (config) => {
      pathRoutes(config);
      config.routes.forEach((route, i) => compileFileRoute(route, i));
    },
  },
  'filesystem server': { provides: 'files' },
  'kafka cache_client': {
    provides: 'cache_client',
    exits: 'cache_server',
    check: (config) => topicRoutes(config),
  },
  'kafka cache_server': { provides: 'cache_server', exits: 'kafka', check: (config) => topicRoutes(config) },
  'kafka client': { provides: 'kafka' },
  'echo server': { provides: ['connections', 'http', 'streams'] },
  'fan server': { provides: 'connections', exits: 'streams' },
  'http client': {
    cannotRun: 'kgate cannot run an http client binding: it serves Kafka topics, not HTTP services behind it',
  },
};

/** `routes[2].with.merge.patch`, as start's messages begin, as segments; [] when there is none. */
function segmentsOf(where: string): (string | number)[] {
  const segments: (string | number)[] = [];
  for (const match of where.matchAll(/\.?([A-Za-z_][\w-]*)|\[(\d+)\]/g)) {
    if (match[2] !== undefined) segments.push(Number(match[2]));
    else if (match[1] !== undefined) segments.push(match[1]);
  }
  return segments;
}

const WHERE = /^(?:binding [^:]+: )?((?:routes|options)(?:\.[A-Za-z_][\w-]*|\[\d+\])*)[.:]?\s*/;

function problemOf(binding: string, error: unknown): BindingProblem {
  const text = error instanceof Error ? error.message : String(error);
  const where = WHERE.exec(text);
  if (where === null) return { segments: ['bindings', binding], message: text };
  const segments = segmentsOf(where[1] ?? '');
  return { segments: ['bindings', binding, ...segments], message: text.slice(where[0].length) || text };
}

/** Every problem `kgate start` would find in these bindings for a config reason. */
export function checkBindings(bindings: ReadonlyMap<string, BindingConfig>): BindingProblem[] {
  const problems: BindingProblem[] = [];
  for (const [name, config] of bindings) {
    const checks = KINDS[`${config.type} ${config.kind}`];
    if (checks === undefined) continue;
    if (checks.cannotRun !== undefined) {
      problems.push({ segments: ['bindings', name, 'kind'], message: checks.cannotRun });
      continue;
    }
    if (checks.exits !== undefined) {
      const needed = checks.exits;
      const exits: [string, (string | number)[]][] = [
        ...(config.exit === undefined ? [] : [[config.exit, ['exit']] as [string, (string | number)[]]]),
        ...config.routes.map((route, i): [string, (string | number)[]] => [
          route.exit,
          ['routes', i, 'exit'],
        ]),
      ];
      for (const [exit, at] of exits) {
        const target = bindings.get(exit);
        if (target === undefined) continue; // reported as an unknown name already
        const provided = KINDS[`${target.type} ${target.kind}`]?.provides ?? [];
        if (!(typeof provided === 'string' ? [provided] : provided).includes(needed))
          problems.push({
            segments: ['bindings', name, ...at],
            message: `exit ${exit} (${target.type} ${target.kind}) does not ${ROLE_TEXT[needed]}`,
          });
      }
    }
    try {
      checks.check?.(config);
    } catch (error) {
      problems.push(problemOf(name, error));
    }
  }
  return problems;
}
