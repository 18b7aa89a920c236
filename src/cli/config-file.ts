import { access } from 'node:fs/promises';
import { resolve } from 'node:path';
import { KgateError } from '../engine/errors.ts';

const DEFAULT_FILES = ['kgate.yaml', 'zilla.yaml'];

/** The explicit `-c` file, else the first of ./kgate.yaml and ./zilla.yaml that exists. */
export async function findConfigFile(explicit: string | undefined, cwd = process.cwd()): Promise<string> {
  if (explicit !== undefined) return resolve(cwd, explicit);
  for (const name of DEFAULT_FILES) {
    const candidate = resolve(cwd, name);
    try {
      await access(candidate);
      return candidate;
    } catch {
      // try the next default name
    }
  }
  throw new CliError(`no config file: pass -c FILE, or create ${DEFAULT_FILES.join(' or ')} in ${cwd}`);
}

/** An error whose message is the whole story for the user: printed as one line, no stack. */
export class CliError extends KgateError {
  constructor(message: string, options?: ErrorOptions) {
    super('KGATE_CLI_USAGE', message, options);
  }
}
