import { strict as assert } from 'node:assert';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { SCHEMA_FILE, formattedSchema } from '../../scripts/schema.ts';
import { assembleSchema } from '../../src/config/assemble-schema.ts';
import type { BindingSchema } from '../../src/config/json-schema.ts';

const fragment = (description: string, definitions?: BindingSchema['definitions']): BindingSchema => ({
  binding: { description, type: 'object' },
  ...(definitions === undefined ? {} : { definitions }),
});

describe('config schema', () => {
  it('schema/kgate.schema.json is assembled from the binding kinds (run npm run schema)', async () => {
    assert.equal(await readFile(SCHEMA_FILE, 'utf8'), await formattedSchema());
  });

  it('selects each kind by type and kind, in the order given', () => {
    const schema = assembleSchema([
      { type: 'a', kind: 'server', schema: fragment('a server') },
      { type: 'b', kind: 'proxy', schema: fragment('b proxy') },
      { type: 'a', kind: 'client', schema: fragment('a client') },
    ]);
    const binding = schema.definitions?.['binding'];
    assert.ok(typeof binding === 'object');
    assert.deepEqual(binding.properties?.['type'], { description: 'Binding type.', enum: ['a', 'b'] });
    assert.deepEqual(
      binding.allOf?.map((entry) => (typeof entry === 'object' ? entry.then : undefined)),
      [
        { properties: { kind: { enum: ['server', 'client'] } } },
        { properties: { kind: { enum: ['proxy'] } } },
        { $ref: '#/definitions/a.server' },
        { $ref: '#/definitions/b.proxy' },
        { $ref: '#/definitions/a.client' },
      ],
    );
    assert.deepEqual(schema.definitions?.['a.client'], { description: 'a client', type: 'object' });
  });

  it('merges definitions kinds share and refuses two different ones of a name', () => {
    const shared = { type: 'string' } as const;
    const schema = assembleSchema([
      { type: 'a', kind: 'server', schema: fragment('a server', { shared }) },
      { type: 'a', kind: 'client', schema: fragment('a client', { shared: { type: 'string' } }) },
    ]);
    assert.deepEqual(schema.definitions?.['shared'], shared);
    assert.throws(
      () =>
        assembleSchema([
          { type: 'a', kind: 'server', schema: fragment('a server', { shared }) },
          { type: 'a', kind: 'client', schema: fragment('a client', { shared: { type: 'integer' } }) },
        ]),
      /schema definition shared of binding a client differs from another one/,
    );
    assert.throws(
      () =>
        assembleSchema([
          { type: 'a', kind: 'server', schema: fragment('one') },
          { type: 'a', kind: 'server', schema: fragment('two') },
        ]),
      /binding a server has two schemas/,
    );
  });
});
