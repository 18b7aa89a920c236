/**
 * kgate as a library: run a config in-process and read or write topics through its cache_client,
 * with the same merged streams, filters and progress the HTTP and SSE bindings use.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { defaultRegistry } from './bindings/index.ts';
import { checkBindings } from './bindings/config-checks.ts';
import {
  CacheClientBinding,
  type CacheStream,
  type OpenOptions,
} from './bindings/kafka/cache_client/index.ts';
import { loadConfigFile, parseConfig, type LoadedConfig } from './config/index.ts';
import { Engine } from './engine/engine.ts';
import { KgateError } from './engine/errors.ts';

export type {
  CacheMessage,
  Capabilities,
  Isolation,
  OpenOptions,
  ProduceAck,
  ProduceMessage,
} from './bindings/kafka/cache_client/index.ts';
export {
  CacheStream,
  formatProgress,
  MessageTooLargeError,
  parseProgress,
} from './bindings/kafka/cache_client/index.ts';
export type { Filter } from './bindings/kafka/cache_client/filters.ts';
export { ConfigError, formatDiagnostic } from './config/index.ts';
export {
  ERROR_CODES,
  errorCodeOf,
  httpStatusOf,
  KgateError,
  type ErrorCode,
  type ErrorSpec,
} from './engine/errors.ts';
export type { ConfigDiagnostic, LoadedConfig } from './config/index.ts';

export interface GatewayOptions {
  /** A config file path, or the YAML text itself with `{ yaml }`. */
  readonly config: string | { readonly yaml: string; readonly name?: string };
  /** Where cache_server bindings keep their cache; a new temporary directory when omitted. */
  readonly stateDir?: string;
  /** Values for `${{env.NAME}}`; default `process.env`. */
  readonly env?: NodeJS.ProcessEnv;
  /** Default: silent. */
  readonly logger?: Logger;
  /**
   * When set, `start` also waits until every binding is ready (a broker answered) and fails past
   * this many milliseconds. Unset, it resolves once the bindings are set up, and calls that need
   * Kafka wait for it within their own deadlines.
   */
  readonly startTimeoutMs?: number;
}

export class Gateway {
  readonly config: LoadedConfig;
  readonly #engine: Engine;

  private constructor(config: LoadedConfig, engine: Engine) {
    this.config = config;
    this.#engine = engine;
  }

  /** Validates the config (throwing a ConfigError listing every problem) and starts its bindings. */
  static async start(options: GatewayOptions): Promise<Gateway> {
    const env = options.env ?? process.env;
    const config =
      typeof options.config === 'string'
        ? await loadConfigFile(options.config, env, checkBindings)
        : parseConfig(options.config.yaml, options.config.name ?? 'kgate.yaml', env, {
            check: checkBindings,
          });
    const engine = new Engine(config, defaultRegistry(), {
      logger: options.logger ?? pino({ level: 'silent' }),
      stateDir: options.stateDir ?? (await mkdtemp(join(tmpdir(), 'kgate-'))),
      ...(options.startTimeoutMs === undefined ? {} : { startTimeoutMs: options.startTimeoutMs }),
    });
    await engine.start();
    return new Gateway(config, engine);
  }

  /**
   * Opens a merged stream over every partition of `topic` (an async iterable that reads only as
   * fast as it is iterated), through the cache_client binding named `via`, or the only one.
   */
  open(topic: string, options: OpenOptions & { readonly via?: string } = {}): Promise<CacheStream> {
    return this.#cacheClient(options.via).open(topic, options);
  }

  /** Prometheus registry holding every binding's metrics. */
  get metrics(): Engine['metrics'] {
    return this.#engine.metrics;
  }

  /** Stops every binding, giving in-flight work up to `drainMs` to finish. */
  stop(drainMs = 10_000): Promise<void> {
    return this.#engine.stop(drainMs);
  }

  #cacheClient(via: string | undefined): CacheClientBinding {
    const names = [...this.config.bindings.values()]
      .filter((b) => b.type === 'kafka' && b.kind === 'cache_client')
      .map((b) => b.name);
    const name = via ?? (names.length === 1 ? names[0] : undefined);
    if (name === undefined) {
      throw new KgateError(
        'KGATE_INVALID_ARGUMENT',
        names.length === 0
          ? 'the config has no kafka cache_client binding to open streams through'
          : `the config has several kafka cache_client bindings (${names.join(', ')}): pass { via: name }`,
      );
    }
    const binding = this.#engine.binding(name);
    if (!(binding instanceof CacheClientBinding)) {
      throw new KgateError('KGATE_INVALID_ARGUMENT', `binding ${name} is not a started kafka cache_client`);
    }
    return binding;
  }
}
