import { basename } from 'node:path';
import { checkBindings } from '../../bindings/config-checks.ts';
import { loadConfigFile } from '../../config/index.ts';
import { formatDiagnostic } from '../../config/index.ts';
import { findConfigFile } from '../config-file.ts';

export interface ValidateOptions {
  readonly config?: string;
}

/** Prints warnings and a one-line summary; errors propagate as a ConfigError listing all of them. */
export async function validateCommand(options: ValidateOptions): Promise<void> {
  const file = await findConfigFile(options.config);
  // The checks start makes of the bindings too, so that a config valid here starts.
  const config = await loadConfigFile(file, process.env, checkBindings);
  for (const warning of config.warnings) process.stderr.write(`warning: ${formatDiagnostic(warning)}\n`);
  const count = config.bindings.size;
  process.stdout.write(
    `${basename(file)}: valid, ${count} binding${count === 1 ? '' : 's'}` +
      (config.warnings.length > 0 ? `, ${config.warnings.length} warning(s)` : '') +
      '\n',
  );
}
