import { join } from 'node:path';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import type { LoadedConfig } from '../config/index.ts';
import type { Binding } from './binding.ts';
import { startOrder } from './order.ts';
import type { BindingRegistry } from './registry.ts';

export interface EngineOptions {
  readonly logger: Logger;
  readonly stateDir: string;
  readonly metrics?: Registry;
  /** How long one binding may take to start (default 30 s). */
  readonly startTimeoutMs?: number;
}

/** Builds the binding graph of one config, starts it in dependency order and stops it in reverse. */
export class Engine {
  readonly metrics: Registry;
  readonly #config: LoadedConfig;
  readonly #registry: BindingRegistry;
  readonly #options: EngineOptions;
  readonly #started: Binding[] = [];
  readonly #byName = new Map<string, Binding>();

  constructor(config: LoadedConfig, registry: BindingRegistry, options: EngineOptions) {
    this.#config = config;
    this.#registry = registry;
    this.#options = options;
    this.metrics = options.metrics ?? new Registry();
  }

  binding(name: string): Binding | undefined {
    return this.#byName.get(name);
  }

  /**
   * Starts every binding. If one fails, the ones already started are stopped again before the
   * error is rethrown, so a failed start never leaves sockets or child processes behind.
   */
  async start(): Promise<void> {
    for (const config of startOrder(this.#config.bindings)) {
      const factory = this.#registry.get(config.type, config.kind);
      if (factory === undefined) {
        throw new Error(`binding ${config.name}: type ${config.type} kind ${config.kind} is not available`);
      }
      const logger = this.#options.logger.child({ binding: config.name });
      const binding = factory({
        config,
        logger,
        metrics: this.metrics,
        stateDir: join(this.#options.stateDir, config.name),
        lookup: (name) => {
          const found = this.#byName.get(name);
          if (found === undefined) throw new Error(`binding ${config.name}: exit ${name} is not started`);
          return found;
        },
      });
      try {
        await binding.start(AbortSignal.timeout(this.#options.startTimeoutMs ?? 30_000));
      } catch (error) {
        await this.stop(5_000);
        throw new Error(`binding ${config.name} failed to start: ${messageOf(error)}`, { cause: error });
      }
      this.#started.push(binding);
      this.#byName.set(config.name, binding);
      logger.debug({ type: config.type, kind: config.kind }, 'binding started');
    }
  }

  /** Stops in reverse start order; bindings still busy when `drainMs` runs out see their signal abort. */
  async stop(drainMs: number): Promise<void> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), drainMs);
    timer.unref();
    try {
      while (this.#started.length > 0) {
        const binding = this.#started.pop();
        if (binding === undefined) break;
        this.#byName.delete(binding.name);
        try {
          await binding.stop(controller.signal);
        } catch (error) {
          this.#options.logger.error({ binding: binding.name, err: error }, 'binding failed to stop cleanly');
        }
      }
    } finally {
      clearTimeout(timer);
    }
  }
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
