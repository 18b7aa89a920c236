import { dirname, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { defaultRegistry } from '../bindings/index.ts';
import { formatDiagnostic, loadConfigFile, type LoadedConfig } from '../config/index.ts';
import { startTelemetry, type Telemetry } from '../telemetry/index.ts';
import { Engine } from './engine.ts';

export interface RunOptions {
  readonly configFile: string;
  readonly logger: Logger;
  /** Defaults to KGATE_CACHE_DIR, then `.kgate/cache` beside the config file. */
  readonly stateDir?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly startTimeoutMs?: number;
}

export interface Running {
  readonly engine: Engine;
  readonly config: LoadedConfig;
  readonly telemetry: Telemetry;
  stop(drainMs?: number): Promise<void>;
}

export function defaultStateDir(configFile: string, env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env['KGATE_CACHE_DIR'];
  if (fromEnv !== undefined && fromEnv !== '') return resolve(fromEnv);
  return join(dirname(resolve(configFile)), '.kgate', 'cache');
}

/** Loads, validates and starts one config; the caller decides when to stop. */
export async function startGateway(options: RunOptions): Promise<Running> {
  const config = await loadConfigFile(options.configFile, options.env ?? process.env);
  for (const warning of config.warnings) options.logger.warn(formatDiagnostic(warning));
  const engine = new Engine(config, defaultRegistry(), {
    logger: options.logger,
    stateDir: options.stateDir ?? defaultStateDir(options.configFile, options.env),
    ...(options.startTimeoutMs === undefined ? {} : { startTimeoutMs: options.startTimeoutMs }),
  });
  await engine.start();
  let telemetry: Telemetry;
  try {
    telemetry = await startTelemetry({
      config: config.telemetry,
      metrics: engine.metrics,
      readiness: { config, binding: (name) => engine.binding(name) },
      logger: options.logger.child({ component: 'telemetry' }),
    });
  } catch (error) {
    await engine.stop(5_000);
    throw error;
  }
  options.logger.info({ config: config.name, bindings: config.bindings.size }, 'kgate started');
  const stop = async (drainMs = 10_000): Promise<void> => {
    // Readiness goes first so that load balancers stop sending work before the bindings drain.
    await telemetry.stop();
    await engine.stop(drainMs);
  };
  return { engine, config, telemetry, stop };
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
}
