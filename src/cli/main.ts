import { createRequire } from 'node:module';
import { Command } from 'commander';
import { ConfigError } from '../config/index.ts';
import { CliError } from './config-file.ts';
import { demoCommand } from './commands/demo.ts';
import { startCommand } from './commands/start.ts';
import { statusCommand } from './commands/status.ts';
import { validateCommand } from './commands/validate.ts';

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

const program = new Command('kgate')
  .description('Kafka caching gateway configured by Zilla-shaped YAML bindings')
  .version(version)
  .showHelpAfterError();

program
  .command('start')
  .description('start the gateway from a config file')
  .option('-c, --config <file>', 'config file (default ./kgate.yaml, then ./zilla.yaml)')
  .option('--cache-dir <dir>', 'cache directory (default $KGATE_CACHE_DIR or .kgate/cache beside the config)')
  .option('--log-level <level>', 'trace, debug, info, warn, error (default $KGATE_LOG_LEVEL or info)')
  .option('--pretty', 'human-readable log lines instead of JSON')
  .option(
    '--cache-max-bytes <size>',
    'encoded record bytes each cache_server may keep, e.g. 10GiB (default $KGATE_CACHE_MAX_BYTES or no limit)',
  )
  .option(
    '-w, --workers <count>',
    'worker threads serving consumers beside the main thread (default $KGATE_WORKERS or 0)',
  )
  .option(
    '--start-timeout <seconds>',
    'exit 1 unless ready (a broker answered) this many seconds after start (default: no limit, listeners answer 503 until ready)',
    Number,
  )
  .action(startCommand);

program
  .command('validate')
  .description('check a config file and report every error in it')
  .option('-c, --config <file>', 'config file (default ./kgate.yaml, then ./zilla.yaml)')
  .action(validateCommand);

program
  .command('status')
  .description("show a running gateway's bindings and cache, asked through its telemetry port")
  .option('-c, --config <file>', 'config file (default ./kgate.yaml, then ./zilla.yaml)')
  .option('--url <url>', 'telemetry server to ask instead, e.g. http://127.0.0.1:7190')
  .action(statusCommand);

program
  .command('demo')
  .description('start a local Kafka broker (or use $KAFKA_BOOTSTRAP_SERVER) and kgate in front of it')
  .option('--no-broker', 'do not start a broker; requires KAFKA_BOOTSTRAP_SERVER')
  .option('--exit-after <seconds>', 'stop by itself after this many seconds', Number)
  .action(demoCommand);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  process.exitCode = 1;
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
  } else if (error instanceof CliError || error instanceof Error) {
    process.stderr.write(`kgate: ${describe(error)}\n`);
    if (process.env['KGATE_DEBUG'] !== undefined && error.stack !== undefined) {
      process.stderr.write(`${error.stack}\n`);
    }
  } else {
    process.stderr.write(`kgate: ${String(error)}\n`);
  }
}

/** One line: the message plus the first cause that adds something (e.g. the system error code). */
function describe(error: Error): string {
  const cause: unknown = error.cause;
  if (cause instanceof Error && !error.message.includes(cause.message))
    return `${error.message}: ${cause.message}`;
  return error.message;
}
