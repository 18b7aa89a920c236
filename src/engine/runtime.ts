import type { Logger } from 'pino';
import {
  ConfigError,
  defaultCacheDir,
  formatDiagnostic,
  loadConfigFile,
  readConfigBytes,
  type LoadedConfig,
  type Redactor,
} from '../config/index.ts';
import { startTelemetry, zillaEvents, type Telemetry } from '../telemetry/index.ts';
import type { Composition } from './composition.ts';
import { Engine, messageOf } from './engine.ts';
import { watchConfigFile, type ConfigWatcher, type ReloadPlan } from './reload.ts';
import { WorkerPool } from './workers/pool.ts';
import { announceGatewayStarted } from './workers/test-fault.ts';

export interface RunOptions {
  readonly configFile: string;
  /** The bindings to run and how worker threads reach the main thread's (see Composition). */
  readonly composition: Composition;
  readonly logger: Logger;
  /** Defaults to KGATE_CACHE_DIR, then `.kgate/cache` beside the config file. */
  readonly stateDir?: string;
  readonly env?: NodeJS.ProcessEnv;
  /**
   * When set (and not 0): fail unless every binding is ready (a broker answered) this long after
   * the start; listeners and telemetry answer meanwhile. Unset: kgate runs whatever the brokers
   * do, `/ready` and the requests that need Kafka answering 503 with why until it is there.
   */
  readonly startTimeoutMs?: number;
  /** Encoded record bytes each cache_server may keep; defaults to KGATE_CACHE_MAX_BYTES, else no limit. */
  readonly cacheMaxBytes?: number;
  /** Worker threads serving beside the main thread; defaults to KGATE_WORKERS, else 0 (none). */
  readonly workers?: number;
  /** Worker threads log human-readable lines, as the main thread's logger does. */
  readonly prettyLogs?: boolean;
  /**
   * Told the substitutions of every config loaded, before anything of it runs: the logger (and the
   * command printing a failed start) use it to keep substituted values out of their output.
   */
  readonly redactor?: Redactor;
}

export interface Running {
  readonly engine: Engine;
  /** The config being served; changes on a successful reload. */
  readonly config: LoadedConfig;
  /** Replaced when a reload restarts telemetry. */
  readonly telemetry: Telemetry;
  /** The worker threads, when started with any. */
  readonly workers: WorkerPool | undefined;
  /**
   * Re-reads the config file and applies it (see `Engine.reload`); an invalid file is logged and
   * changes nothing. Reloads run one at a time; `trigger` names the cause in the log.
   */
  reload(trigger: string): Promise<void>;
  /** Reloads whenever the config file changes, until `stop()`. */
  watchConfig(): void;
  stop(drainMs?: number): Promise<void>;
}

/** The cache directory without `--cache-dir`; the config loader checks locations against the same. */
export function defaultStateDir(configFile: string, env: NodeJS.ProcessEnv = process.env): string {
  return defaultCacheDir(configFile, env);
}

/** The cache budget to run with: the option, else KGATE_CACHE_MAX_BYTES, else none. */
export function cacheBudget(options: Pick<RunOptions, 'cacheMaxBytes' | 'env'>): { cacheMaxBytes?: number } {
  if (options.cacheMaxBytes !== undefined) return { cacheMaxBytes: options.cacheMaxBytes };
  const raw = (options.env ?? process.env)['KGATE_CACHE_MAX_BYTES'];
  if (raw === undefined || raw.trim() === '') return {};
  const value = parseByteSize(raw);
  if (value === undefined) throw new Error(`KGATE_CACHE_MAX_BYTES: not a byte size: "${raw}"`);
  return { cacheMaxBytes: value };
}

const BYTE_UNITS: Record<string, number> = {
  '': 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
};

/** A positive byte count, bare or with a binary unit (`1048576`, `512MiB`, `2g`); undefined if malformed. */
export function parseByteSize(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  if (match === null) return undefined;
  const unit = BYTE_UNITS[(match[2] ?? '').toLowerCase()];
  if (unit === undefined) return undefined;
  const value = Math.floor(Number(match[1]) * unit);
  return Number.isSafeInteger(value) && value > 0 ? value : undefined;
}

/** How many worker threads to run: the option, else KGATE_WORKERS, else none. */
export function workerCount(options: Pick<RunOptions, 'workers' | 'env'>): number {
  const raw = options.workers ?? (options.env ?? process.env)['KGATE_WORKERS'];
  if (raw === undefined || (typeof raw === 'string' && raw.trim() === '')) return 0;
  const count = Number(raw);
  if (!Number.isInteger(count) || count < 0 || count > 64)
    throw new Error(`workers: not a number of threads from 0 to 64: "${raw}"`);
  return count;
}

/** What the file holds, as far as the loader would read it: a file past its limit is not read whole. */
async function readConfigText(file: string): Promise<string> {
  return (await readConfigBytes(file)).toString('utf8');
}

/** Loads, validates and starts one config; the caller decides when to stop. */
export async function startGateway(options: RunOptions): Promise<Running> {
  // The text of the last load or reload attempt: file events that leave it as it was (touch, a
  // save without edits, the several events one save raises) change nothing and log nothing.
  const text = await readConfigText(options.configFile).catch(() => undefined);
  const config = await loadConfig(options);
  const workers = workerCount(options);
  const stateDir = options.stateDir ?? defaultStateDir(options.configFile, options.env);
  // The start deadline counts from here; listeners and telemetry answer before it is met.
  const timeoutMs = options.startTimeoutMs ?? 0;
  const deadline = timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined;
  const engine = await startEngine(config, options, stateDir, workers);
  const pool = await startWorkers(engine, config, options, stateDir, workers);
  const startTelemetry = telemetryStarter(engine, options.logger, options.redactor);
  const telemetry = await startFirstTelemetry(startTelemetry, config, engine, pool);
  if (deadline !== undefined) await readyByDeadline(engine, deadline, telemetry, pool);
  options.logger.info({ config: config.name, bindings: config.bindings.size, workers }, 'kgate started');
  zillaEvents(engine.metrics).engineStarted();
  return new RunningGateway(options, engine, pool, startTelemetry, telemetry, text);
}

/** Every binding ready before `deadline` aborts; else everything is stopped and the reason thrown. */
async function readyByDeadline(
  engine: Engine,
  deadline: AbortSignal,
  telemetry: Telemetry,
  pool: WorkerPool | undefined,
): Promise<void> {
  try {
    await engine.ready(deadline);
  } catch (error) {
    await telemetry.stop();
    await pool?.stop(5_000);
    await engine.stop(5_000);
    throw error;
  }
}

/** The config file, validated, its warnings logged; a ConfigError lists every problem in it. */
async function loadConfig(options: RunOptions): Promise<LoadedConfig> {
  const config = await loadConfigFile(
    options.configFile,
    options.env ?? process.env,
    options.composition.checkBindings,
  );
  options.redactor?.add(config.substitutions ?? []);
  for (const warning of config.warnings) options.logger.warn(formatDiagnostic(warning));
  return config;
}

/** The main thread's bindings, started; with workers beside it, their listeners share ports. */
async function startEngine(
  config: LoadedConfig,
  options: RunOptions,
  stateDir: string,
  workers: number,
): Promise<Engine> {
  const engine = new Engine(config, options.composition.registry(), {
    logger: options.logger,
    stateDir,
    ...cacheBudget(options),
    ...(workers > 0 ? { sharedListeners: true } : {}),
  });
  await engine.start();
  return engine;
}

/** The worker threads, once the main thread's bindings run; if they fail, the engine is stopped. */
async function startWorkers(
  engine: Engine,
  config: LoadedConfig,
  options: RunOptions,
  stateDir: string,
  workers: number,
): Promise<WorkerPool | undefined> {
  if (workers === 0) return undefined;
  const logger = options.logger;
  try {
    return await WorkerPool.start({
      count: workers,
      config,
      stateDir,
      logger,
      ...(options.prettyLogs === true ? { prettyLogs: true } : {}),
      composition: options.composition,
      bindings: (name) => engine.binding(name),
      onFatal: (error) => exitFatally(logger, error, 'worker'),
    });
  } catch (error) {
    await engine.stop(5_000);
    throw error;
  }
}

type TelemetryStarter = (config: LoadedConfig) => Promise<Telemetry>;

/** Starts telemetry for a config, its readiness checking that config's bindings. */
function telemetryStarter(engine: Engine, logger: Logger, redactor: Redactor | undefined): TelemetryStarter {
  return (config) =>
    startTelemetry({
      config: config.telemetry,
      metrics: engine.metrics,
      readiness: { config, binding: (name) => engine.binding(name) },
      logger: logger.child({ component: 'telemetry' }),
      ...(redactor === undefined ? {} : { redactor }),
    });
}

/** Telemetry at start; if it fails, the workers and the engine are stopped. */
async function startFirstTelemetry(
  start: TelemetryStarter,
  config: LoadedConfig,
  engine: Engine,
  pool: WorkerPool | undefined,
): Promise<Telemetry> {
  try {
    return await start(config);
  } catch (error) {
    await pool?.stop(5_000);
    await engine.stop(5_000);
    throw error;
  }
}

/** A started gateway: reloads its config one at a time, watches the file, stops in order. */
class RunningGateway implements Running {
  readonly engine: Engine;
  readonly workers: WorkerPool | undefined;
  readonly #options: RunOptions;
  readonly #logger: Logger;
  readonly #startTelemetry: TelemetryStarter;
  #telemetry: Telemetry;
  #lastText: string | undefined;
  #watcher: ConfigWatcher | undefined;
  #stopping = false;
  #queue = Promise.resolve();

  constructor(
    options: RunOptions,
    engine: Engine,
    workers: WorkerPool | undefined,
    startTelemetry: TelemetryStarter,
    telemetry: Telemetry,
    lastText: string | undefined,
  ) {
    this.#options = options;
    this.#logger = options.logger;
    this.engine = engine;
    this.workers = workers;
    this.#startTelemetry = startTelemetry;
    this.#telemetry = telemetry;
    this.#lastText = lastText;
  }

  get config(): LoadedConfig {
    return this.engine.config;
  }

  get telemetry(): Telemetry {
    return this.#telemetry;
  }

  reload(trigger: string): Promise<void> {
    const run = this.#queue.then(() => this.#apply(trigger));
    this.#queue = run.catch((error: unknown) =>
      this.#logger.error({ trigger, err: error }, 'config reload failed'),
    );
    return this.#queue;
  }

  watchConfig(): void {
    if (this.#watcher !== undefined || this.#stopping) return;
    this.#watcher = watchConfigFile(
      this.#options.configFile,
      () => void this.reload('watch'),
      (error) => this.#logger.warn({ err: error }, 'config file watch failed, reload on SIGHUP only'),
    );
  }

  async stop(drainMs = 10_000): Promise<void> {
    this.#stopping = true;
    this.#watcher?.close();
    // A reload in progress finishes first, so that every binding it started is stopped too.
    await this.#queue;
    // Readiness goes first so that load balancers stop sending work before the bindings drain.
    await this.#telemetry.stop();
    // Workers' listeners and streams drain first, while the main thread's bindings they reach
    // through their thread services still run; the main thread gets what is left of the budget.
    const started = Date.now();
    await this.workers?.stop(drainMs);
    await this.engine.stop(Math.max(drainMs - (Date.now() - started), 1_000));
    const events = zillaEvents(this.engine.metrics);
    events.engineStopped();
    events.flush();
  }

  async #apply(trigger: string): Promise<void> {
    if (this.#stopping) return;
    if (!(await this.#textChanged(trigger))) return;
    const next = await this.#loadNext(trigger);
    if (next === undefined) return;
    const before = this.engine.config;
    const plan = await this.#reloadEngine(next, trigger);
    if (plan === undefined) return;
    // Workers follow only a config the main thread runs, since their stand-ins reach the main
    // thread's bindings.
    await this.workers?.reload(next);
    // Readiness checks the bindings of the config it was started with, so a new set of names
    // needs a new telemetry server as much as a new telemetry section does.
    if (plan.telemetry || plan.added.length > 0 || plan.removed.length > 0)
      await this.#restartTelemetry(next, before);
    this.#logger.info(
      {
        trigger,
        config: next.name,
        added: plan.added,
        changed: plan.changed,
        removed: plan.removed,
        restarted: plan.dependents,
        telemetry: plan.telemetry,
      },
      'config reloaded',
    );
  }

  /** Reads the file; false when a watch event left its text as the last attempt read it. */
  async #textChanged(trigger: string): Promise<boolean> {
    let text: string;
    try {
      text = await readConfigText(this.#options.configFile);
    } catch {
      // Between a delete and the rename of its replacement; the rename raises another event.
      if (trigger === 'watch') return false;
      text = '';
    }
    if (trigger === 'watch' && text === this.#lastText) return false;
    this.#lastText = text;
    return true;
  }

  /** The file's config, or undefined (each problem logged) when it is not valid. */
  async #loadNext(trigger: string): Promise<LoadedConfig | undefined> {
    let next: LoadedConfig;
    try {
      next = await loadConfigFile(
        this.#options.configFile,
        this.#options.env ?? process.env,
        this.#options.composition.checkBindings,
      );
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      for (const diagnostic of error.diagnostics) this.#logger.error(formatDiagnostic(diagnostic));
      this.#logger.error(
        { trigger, errors: error.diagnostics.length },
        'config reload rejected, the running config is kept',
      );
      return undefined;
    }
    // Kept with the previous config's: bindings still draining may log what they were given.
    this.#options.redactor?.add(next.substitutions ?? []);
    for (const warning of next.warnings) this.#logger.warn(formatDiagnostic(warning));
    return next;
  }

  /** The main thread's bindings moved to `next`, or undefined (logged) when it kept the old ones. */
  async #reloadEngine(next: LoadedConfig, trigger: string): Promise<ReloadPlan | undefined> {
    try {
      return await this.engine.reload(next);
    } catch (error) {
      this.#logger.error({ trigger, err: error }, messageOf(error));
      return undefined;
    }
  }

  /** Telemetry for `next`; if it cannot start, the previous section over the new bindings. */
  async #restartTelemetry(next: LoadedConfig, before: LoadedConfig): Promise<void> {
    await this.#telemetry.stop();
    try {
      this.#telemetry = await this.#startTelemetry(next);
    } catch (error) {
      this.#logger.error({ err: error }, 'telemetry failed to restart, restoring the previous one');
      try {
        this.#telemetry = await this.#startTelemetry({ ...before, bindings: next.bindings });
      } catch (restoreError) {
        this.#logger.error({ err: restoreError }, 'telemetry could not be restored');
        this.#telemetry = { ports: [], stop: () => Promise.resolve() };
      }
    }
  }
}

/**
 * Stops on the first SIGINT/SIGTERM within the drain budget and exits 0; a second signal while
 * draining exits at once, so an operator is never stuck with a process that will not die.
 */
export function stopOnSignals(running: Running, logger: Logger, drainMs = 10_000): void {
  let stopping = false;
  // A gateway runs until told to stop, even while no binding holds a socket open.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal while draining, exiting now');
      process.exit(1);
    }
    stopping = true;
    clearInterval(keepAlive);
    logger.info({ signal, drainMs }, 'stopping');
    running.stop(drainMs).then(
      () => {
        logger.info('stopped');
        logger.flush();
        process.exit(0);
      },
      (error: unknown) => {
        logger.fatal({ err: error }, 'stop failed');
        logger.flush();
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', () => {
    if (!stopping) void running.reload('SIGHUP');
  });
}

/**
 * An error nothing caught leaves the process in an unknown state: rather than linger half-working
 * with its ports open, it logs one fatal line (flushed before exit, so it is the last line) and
 * exits 1, closing every socket. Errors a binding can pin to one stream or connection are handled
 * there and never reach this.
 */
export function exitOnUncaughtErrors(logger: Logger): void {
  process.on('uncaughtException', (error) => exitFatally(logger, error, 'uncaughtException'));
  process.on('unhandledRejection', (reason) => exitFatally(logger, reason, 'unhandledRejection'));
}

let exiting = false;

/** Logs one fatal line, flushed so that it is the last, and exits 1. */
export function exitFatally(logger: Logger, error: unknown, origin: string): void {
  if (exiting) return;
  exiting = true;
  logger.fatal({ err: error, origin }, `fatal ${origin}: ${messageOf(error)}; exiting`);
  // A flush that never calls back must not keep a broken process alive.
  setTimeout(() => process.exit(1), 2_000).unref();
  logger.flush(() => process.exit(1));
}

/**
 * Test hook, read once by `kgate start` after it has started: `KGATE_TEST_FAULT=uncaught-after-start`
 * throws from a timer shortly after, so tests can watch a real uncaught error take the process
 * down; `worker-exit-after-start` makes a worker thread exit (see workers/test-fault.ts). Unset,
 * or any other value, it does nothing.
 */
export function injectTestFault(env: NodeJS.ProcessEnv = process.env): void {
  announceGatewayStarted(env);
  if (env['KGATE_TEST_FAULT'] !== 'uncaught-after-start') return;
  setTimeout(() => {
    throw new Error('injected test fault: uncaught-after-start');
  }, 200);
}
