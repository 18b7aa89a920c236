import { pino, type DestinationStream, type Logger } from 'pino';
import { default as pinoPretty } from 'pino-pretty';
import type { Redactor } from '../config/index.ts';

export interface LoggerOptions {
  readonly level?: string;
  /** Where lines go; stderr keeps stdout free for command output. */
  readonly destination?: number;
  /** Human-readable lines (pino-pretty) instead of JSON, colored on a terminal. */
  readonly pretty?: boolean;
  /**
   * Puts `${{env.NAME}}` back for substituted values in every line (the runtime adds each config's
   * substitutions as it loads it), whatever field an error or option reached.
   */
  readonly redactor?: Redactor;
}

function destinationOf(options: LoggerOptions): DestinationStream {
  const fd = options.destination ?? 2;
  if (options.pretty !== true) return pino.destination({ fd, sync: false });
  // In-process rather than a transport thread: the fatal line before an exit must get out.
  return pinoPretty({
    destination: fd,
    sync: true,
    colorize: fd === 2 ? process.stderr.isTTY : fd === 1 ? process.stdout.isTTY : false,
    translateTime: 'SYS:standard',
    ignore: 'hostname',
  });
}

/** One line per event; credentials are redacted wherever a binding happens to log its options. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const redactor = options.redactor;
  return pino(
    {
      level: options.level ?? process.env['KGATE_LOG_LEVEL'] ?? 'info',
      base: { pid: process.pid },
      // pino's default, relied on: errors are logged whole as `err`, with their stack, cause
      // chain and code, never as their message alone.
      serializers: { err: pino.stdSerializers.err },
      redact: {
        paths: [
          '*.password',
          '*.*.password',
          '*.*.*.password',
          'options.sasl.password',
          '*.credentials',
          '*.token',
          '*.*.token',
          'options.sasl.token',
        ],
        censor: '[redacted]',
      },
      ...(redactor === undefined ? {} : { hooks: { streamWrite: (line: string) => redactor.json(line) } }),
    },
    destinationOf(options),
  );
}
