import { pino, type Logger } from 'pino';

export interface LoggerOptions {
  readonly level?: string;
  /** Where JSON lines go; stderr keeps stdout free for command output. */
  readonly destination?: number;
}

/** One JSON line per event; credentials are redacted wherever a binding happens to log its options. */
export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? process.env['KGATE_LOG_LEVEL'] ?? 'info',
      base: { pid: process.pid },
      redact: {
        paths: ['*.password', '*.*.password', '*.*.*.password', 'options.sasl.password', '*.credentials'],
        censor: '[redacted]',
      },
    },
    pino.destination({ fd: options.destination ?? 2, sync: false }),
  );
}
