import { strict as assert } from 'node:assert';
import { readFile } from 'node:fs/promises';
import { it } from 'node:test';
import { REFERENCE_FILE, formattedConfigReference } from '../../scripts/config-reference.ts';
import { knownBindingTypes } from '../../src/config/index.ts';

it('docs/config-reference.md is generated from the current schema (run node scripts/config-reference.ts)', async () => {
  assert.equal(await readFile(REFERENCE_FILE, 'utf8'), await formattedConfigReference());
});

it('documents every binding type and kind', async () => {
  const reference = await readFile(REFERENCE_FILE, 'utf8');
  for (const [type, kinds] of knownBindingTypes()) {
    for (const kind of kinds) assert.match(reference, new RegExp(`^### ${type} ${kind}$`, 'm'));
  }
});
