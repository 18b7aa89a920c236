import { composition } from '../../bindings/index.ts';
import { ConfigError, Redactor } from '../../config/index.ts';
import { createLogger } from '../../engine/logger.ts';
import {
  exitOnUncaughtErrors,
  injectTestFault,
  parseByteSize,
  startGateway,
  stopOnSignals,
} from '../../engine/runtime.ts';
import { CliError } from '../config-file.ts';
import { findConfigFile } from '../config-file.ts';

export interface StartOptions {
  readonly config?: string;
  readonly cacheDir?: string;
  readonly logLevel?: string;
  readonly pretty?: boolean;
  readonly startTimeout?: number;
  readonly cacheMaxBytes?: string;
  readonly workers?: string;
}

export async function startCommand(options: StartOptions): Promise<void> {
  const configFile = await findConfigFile(options.config);
  let cacheMaxBytes: number | undefined;
  if (options.cacheMaxBytes !== undefined) {
    cacheMaxBytes = parseByteSize(options.cacheMaxBytes);
    if (cacheMaxBytes === undefined)
      throw new CliError(`--cache-max-bytes: not a byte size: "${options.cacheMaxBytes}"`);
  }
  let workers: number | undefined;
  if (options.workers !== undefined) {
    workers = Number(options.workers);
    if (!/^\d+$/.test(options.workers) || workers > 64)
      throw new CliError(`--workers: not a number of threads from 0 to 64: "${options.workers}"`);
  }
  const redactor = new Redactor();
  const logger = createLogger({
    ...(options.logLevel === undefined ? {} : { level: options.logLevel }),
    ...(options.pretty === true ? { pretty: true } : {}),
    redactor,
  });
  exitOnUncaughtErrors(logger);
  const running = await startGateway({
    configFile,
    composition,
    logger,
    redactor,
    ...(options.cacheDir === undefined ? {} : { stateDir: options.cacheDir }),
    ...(options.startTimeout === undefined ? {} : { startTimeoutMs: options.startTimeout * 1000 }),
    ...(cacheMaxBytes === undefined ? {} : { cacheMaxBytes }),
    ...(workers === undefined ? {} : { workers }),
    ...(options.pretty === true ? { prettyLogs: true } : {}),
  }).catch((error: unknown) => {
    // A binding's start error may quote an option (a server address carrying credentials, say).
    throw error instanceof ConfigError ? error : redactor.error(error);
  });
  // Edits to the file, and SIGHUP, apply the new config without a restart.
  running.watchConfig();
  stopOnSignals(running, logger);
  // After the lines logged so far are written, so that a fault a test injects cannot overtake them.
  logger.flush(() => injectTestFault());
}
