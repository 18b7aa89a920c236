import { createLogger } from '../../engine/logger.ts';
import { exitOnUncaughtErrors, injectTestFault, startGateway, stopOnSignals } from '../../engine/runtime.ts';
import { findConfigFile } from '../config-file.ts';

export interface StartOptions {
  readonly config?: string;
  readonly cacheDir?: string;
  readonly logLevel?: string;
  readonly startTimeout?: number;
}

export async function startCommand(options: StartOptions): Promise<void> {
  const configFile = await findConfigFile(options.config);
  const logger = createLogger(options.logLevel === undefined ? {} : { level: options.logLevel });
  exitOnUncaughtErrors(logger);
  const running = await startGateway({
    configFile,
    logger,
    ...(options.cacheDir === undefined ? {} : { stateDir: options.cacheDir }),
    ...(options.startTimeout === undefined ? {} : { startTimeoutMs: options.startTimeout * 1000 }),
  });
  // Edits to the file, and SIGHUP, apply the new config without a restart.
  running.watchConfig();
  stopOnSignals(running, logger);
  injectTestFault();
}
