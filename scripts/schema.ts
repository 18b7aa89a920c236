// Writes schema/kgate.schema.json from the schema fragments of the binding kinds kgate registers,
// so that editors and the configuration reference see what the loader accepts. `node
// scripts/schema.ts` rewrites the file; `--check` only compares (a unit test does the same).
import { readFile, writeFile } from 'node:fs/promises';
import { format, resolveConfig } from 'prettier';
import { BINDING_KINDS } from '../src/bindings/index.ts';
import { assembleSchema } from '../src/config/assemble-schema.ts';

export const SCHEMA_FILE = new URL('../schema/kgate.schema.json', import.meta.url);

/** The schema as committed: assembled, then formatted with the repository's Prettier settings. */
export async function formattedSchema(): Promise<string> {
  const options = (await resolveConfig(SCHEMA_FILE)) ?? {};
  return format(JSON.stringify(assembleSchema(BINDING_KINDS), null, 2), { ...options, parser: 'json' });
}

if (import.meta.main) {
  const text = await formattedSchema();
  if (process.argv.includes('--check')) {
    const current = await readFile(SCHEMA_FILE, 'utf8').catch(() => '');
    if (current !== text) {
      console.error('schema/kgate.schema.json is out of date; run `npm run schema`');
      process.exitCode = 1;
    }
  } else {
    await writeFile(SCHEMA_FILE, text);
  }
}
