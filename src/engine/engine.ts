import { join } from 'node:path';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import type { BindingConfig, LoadedConfig } from '../config/index.ts';
import { startGuards, type Guard } from '../guards/index.ts';
import type { Binding } from './binding.ts';
import { ListenerPool } from './listeners.ts';
import { startOrder } from './order.ts';
import type { BindingRegistry } from './registry.ts';
import { planReload, sameGuards, type ReloadPlan } from './reload.ts';

export interface EngineOptions {
  readonly logger: Logger;
  readonly stateDir: string;
  readonly metrics?: Registry;
  /**
   * When set (and not 0), `start()` also waits for every binding to be ready (a broker answered)
   * and fails if that takes longer, counted from the start. Unset, `start()` resolves once every
   * binding is set up and listening, whether Kafka is up or not; see `ready()`.
   */
  readonly startTimeoutMs?: number;
  /** Passed to every binding as `BindingContext.cacheMaxBytes`. */
  readonly cacheMaxBytes?: number;
  /** Passed to every binding as `BindingContext.sharedListeners`. */
  readonly sharedListeners?: boolean;
}

/** Builds the binding graph of one config, starts it in dependency order and stops it in reverse. */
export class Engine {
  readonly metrics: Registry;
  #config: LoadedConfig;
  readonly #registry: BindingRegistry;
  readonly #options: EngineOptions;
  #started: Binding[] = [];
  readonly #byName = new Map<string, Binding>();
  readonly #listeners = new ListenerPool();
  /** The bindings being stopped now, by name: what `BindingContext.isStopping` answers from. */
  #stopping = new Set<string>();
  /** The config's guards, started before the bindings that consult them. */
  #guards: ReadonlyMap<string, Guard> = new Map();

  constructor(config: LoadedConfig, registry: BindingRegistry, options: EngineOptions) {
    this.#config = config;
    this.#registry = registry;
    this.#options = options;
    this.metrics = options.metrics ?? new Registry();
  }

  binding(name: string): Binding | undefined {
    return this.#byName.get(name);
  }

  /** The config the running bindings were built from; after a reload, the new one. */
  get config(): LoadedConfig {
    return this.#config;
  }

  /**
   * Starts every binding. If one fails, the ones already started are stopped again before the
   * error is rethrown, so a failed start never leaves sockets or child processes behind.
   */
  async start(): Promise<void> {
    const timeoutMs = this.#options.startTimeoutMs ?? 0;
    const deadline = timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : new AbortController().signal;
    try {
      this.#guards = await this.#startGuards(this.#config);
      for (const config of startOrder(this.#config.bindings)) await this.#startOne(config, deadline);
      if (timeoutMs > 0) await this.ready(deadline);
    } catch (error) {
      await this.stop(5_000);
      throw error;
    }
  }

  /**
   * Resolves once every started binding is ready (see `Binding.ready`); rejects with the first
   * that is not by the time `signal` aborts, or that cannot be, as `binding x failed to start: why`.
   */
  async ready(signal: AbortSignal): Promise<void> {
    await Promise.all(
      this.#started.map(async (binding) => {
        try {
          await binding.ready?.(signal);
        } catch (error) {
          throw new Error(`binding ${binding.name} failed to start: ${messageOf(error)}`, { cause: error });
        }
      }),
    );
  }

  /**
   * Moves to `next` by restarting only what `planReload` says must restart; untouched bindings
   * keep running. Not to be called while another start, reload or stop is in progress.
   *
   * If a binding of the new config fails to start, the bindings this reload started are stopped
   * and the ones it stopped are started again from the previous config, then the error is thrown.
   * That restore is best effort: a binding that no longer starts either (its port taken meanwhile,
   * say) is logged and stays down, and readiness reports it as not started.
   */
  async reload(next: LoadedConfig, drainMs = 5_000): Promise<ReloadPlan> {
    // Listeners the stopped bindings release stay open, their new connections waiting, until the
    // bindings started next take them over; those nobody takes close when the reload ends.
    this.#listeners.hold();
    try {
      return await this.#reload(next, drainMs);
    } finally {
      this.#listeners.settle();
    }
  }

  async #startGuards(config: LoadedConfig): Promise<ReadonlyMap<string, Guard>> {
    if (config.guards === undefined || config.guards.size === 0) return new Map();
    return startGuards(config.guards, this.#options.logger);
  }

  #closeGuards(guards: ReadonlyMap<string, Guard>): void {
    for (const guard of guards.values()) guard.close();
  }

  async #reload(next: LoadedConfig, drainMs: number): Promise<ReloadPlan> {
    const plan = planReload(this.#config, next);
    const previous = this.#config;
    const previousGuards = this.#guards;
    // Every binding consulting a guard restarts when guards change (planReload), so the new
    // guards are started first, and a guard that cannot start fails the reload before anything stops.
    const guardsChanged = !sameGuards(previous, next);
    const nextGuards = guardsChanged ? await this.#startGuards(next) : previousGuards;
    await this.#stopNames(plan.stop, drainMs);
    this.#config = next;
    this.#guards = nextGuards;
    const started: string[] = [];
    try {
      for (const name of plan.start) {
        const config = next.bindings.get(name);
        if (config === undefined) continue;
        await this.#startOne(config);
        started.push(name);
      }
    } catch (error) {
      this.#options.logger.error({ err: error }, 'config reload failed, restoring the previous bindings');
      await this.#stopNames(started.reverse(), drainMs);
      this.#config = previous;
      this.#guards = previousGuards;
      if (guardsChanged) this.#closeGuards(nextGuards);
      const down: string[] = [];
      for (const name of [...plan.stop].reverse()) {
        const config = previous.bindings.get(name);
        if (config === undefined) continue;
        try {
          await this.#startOne(config);
        } catch (restoreError) {
          down.push(name);
          this.#options.logger.error({ binding: name, err: restoreError }, 'binding could not be restored');
        }
      }
      this.#reorder();
      const restored = down.length === 0 ? 'previous bindings restored' : `still down: ${down.join(', ')}`;
      throw new Error(`config reload failed: ${messageOf(error)}; ${restored}`, { cause: error });
    }
    if (guardsChanged) this.#closeGuards(previousGuards);
    this.#reorder();
    return plan;
  }

  async #startOne(config: BindingConfig, signal = new AbortController().signal): Promise<void> {
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
      cacheDir: this.#options.stateDir,
      configFile: this.#config.file,
      ...(this.#config.catalogs === undefined ? {} : { catalogs: this.#config.catalogs }),
      ...(this.#options.cacheMaxBytes === undefined ? {} : { cacheMaxBytes: this.#options.cacheMaxBytes }),
      ...(this.#options.sharedListeners === true ? { sharedListeners: true } : {}),
      guards: this.#guards,
      lookup: (name) => {
        const found = this.#byName.get(name);
        if (found === undefined) throw new Error(`binding ${config.name}: exit ${name} is not started`);
        return found;
      },
      listeners: this.#listeners,
      isStopping: (name) => this.#stopping.has(name),
    });
    try {
      await binding.start(signal);
    } catch (error) {
      throw new Error(`binding ${config.name} failed to start: ${messageOf(error)}`, { cause: error });
    }
    this.#started.push(binding);
    this.#byName.set(config.name, binding);
    logger.debug({ type: config.type, kind: config.kind }, 'binding started');
  }

  /** Stops the named bindings in the order given, each within what is left of one drain budget. */
  async #stopNames(names: readonly string[], drainMs: number): Promise<void> {
    const signal = AbortSignal.timeout(drainMs);
    this.#stopping = new Set(names);
    for (const name of names) {
      const binding = this.#byName.get(name);
      if (binding === undefined) continue;
      this.#byName.delete(name);
      this.#started = this.#started.filter((b) => b !== binding);
      try {
        await binding.stop(signal);
      } catch (error) {
        this.#options.logger.error({ binding: name, err: error }, 'binding failed to stop cleanly');
      }
    }
    this.#stopping = new Set();
  }

  /** Keeps the stop order (reverse of this list) valid after bindings came and went. */
  #reorder(): void {
    const ordered: Binding[] = [];
    for (const config of startOrder(this.#config.bindings)) {
      const binding = this.#byName.get(config.name);
      if (binding !== undefined) ordered.push(binding);
    }
    this.#started = ordered;
  }

  /** Stops in reverse start order; bindings still busy when `drainMs` runs out see their signal abort. */
  async stop(drainMs: number): Promise<void> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), drainMs);
    timer.unref();
    this.#stopping = new Set(this.#byName.keys());
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
      this.#stopping = new Set();
      this.#closeGuards(this.#guards);
      this.#guards = new Map();
    }
  }
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
