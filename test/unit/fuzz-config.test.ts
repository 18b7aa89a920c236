import { strict as assert } from 'node:assert';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { ConfigError, formatDiagnostic, parseConfig, type LoadedConfig } from '../../src/config/index.ts';
import { fuzzParameters, hostileText, mutated, timed } from '../support/fuzz.ts';

// The config loader fuzzed: the shipped example files with YAML punctuation, `${{env.X}}`
// expressions and keys edited in at random, YAML-shaped noise, and documents of the config's
// shape with random values in its places. Whatever the text, parseConfig returns a config or
// throws a ConfigError whose diagnostics all format and show no substituted value, in bounded
// time. (How deep and how many aliases a file may use is bounded by the loader itself and tested
// with it.)

const EXAMPLES = join(import.meta.dirname, '..', '..', 'examples');
const examples = readdirSync(EXAMPLES)
  .filter((name) => name.endsWith('.yaml'))
  .map((name) => readFileSync(join(EXAMPLES, name), 'utf8'));

const ENV = { PORT: '7114', HOST: '127.0.0.1', SECRET: 'sekret-7f3a', EMPTY: '' };

const YAML_UNITS = [
  ...':-[]{},&*!|>\'"#%@` \n\t?',
  '  ',
  '\n  ',
  '\n- ',
  ': ',
  '${{env.PORT}}',
  '${{ env.SECRET }}',
  '${{env.MISSING}}',
  '${{env.}}',
  '${params.id}',
  '${etag}',
  'bindings',
  'routes',
  'when',
  'exit',
  'options',
  'type',
  'kind',
  '__proto__',
  'constructor',
  '<<',
  '~',
  'null',
  'true',
  '0x1F',
  '1e400',
  '!!binary',
  '!!str',
  '\u00e9',
  '\ufeff',
  '\u0000',
];

/** A value for any place in a config: scalars the schema may or may not take, lists and maps of them. */
const anyValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom(
      null,
      true,
      false,
      0,
      -1,
      7114,
      2 ** 53,
      1.5,
      Number.NaN,
      '',
      '*',
      '/items/{id}',
      '0-65535',
    ),
    fc.string({ unit: fc.constantFrom(...YAML_UNITS), maxLength: 12 }),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(fc.constantFrom('path', 'method', 'topic', 'port', 'headers', 'x'), tie('value'), {
      maxKeys: 3,
    }),
  ),
})).value;

const TYPES = [
  'tcp',
  'tls',
  'http',
  'sse',
  'http-kafka',
  'sse-kafka',
  'kafka',
  'filesystem',
  'http-filesystem',
  'x',
];
const KINDS = ['server', 'client', 'proxy', 'cache_client', 'cache_server', 'remote_server', 'x'];

/** Documents of the config's shape, with random values where options, routes and exits go. */
const shapedDocument = fc
  .record(
    {
      name: fc.oneof(fc.string({ maxLength: 8 }), anyValue),
      bindings: fc.dictionary(
        fc.constantFrom('north_tcp', 'north_http', 'rest', 'events', 'south', 'x'),
        fc.record(
          {
            type: fc.oneof(fc.constantFrom(...TYPES), anyValue),
            kind: fc.oneof(fc.constantFrom(...KINDS), anyValue),
            options: anyValue,
            routes: fc.array(
              fc.record(
                { when: fc.array(anyValue, { maxLength: 2 }), exit: anyValue, with: anyValue },
                { requiredKeys: [] },
              ),
              { maxLength: 2 },
            ),
            exit: fc.oneof(fc.constantFrom('north_http', 'rest', 'south', 'missing'), anyValue),
          },
          { requiredKeys: ['type', 'kind'] },
        ),
        { maxKeys: 4 },
      ),
      telemetry: anyValue,
      guards: anyValue,
    },
    { requiredKeys: ['bindings'] },
  )
  .map((document) => stringify(document));

const text = fc.oneof(
  { weight: 4, arbitrary: mutated(fc.constantFrom(...examples), YAML_UNITS) },
  { weight: 3, arbitrary: shapedDocument },
  { weight: 2, arbitrary: mutated(shapedDocument, YAML_UNITS) },
  { weight: 1, arbitrary: hostileText(YAML_UNITS, 300) },
);

/** Far above the CPU time the loader takes on a few kilobytes. */
const LOAD_BOUND_MS = 2_000;

describe('fuzz: config loader', () => {
  it('returns a config or throws a ConfigError, in bounded time, whatever the text', () => {
    fc.assert(
      fc.property(text, (yaml) => {
        let outcome: LoadedConfig | ConfigError;
        const { ms } = timed(() => {
          try {
            outcome = parseConfig(yaml, 'fuzz.yaml', ENV);
          } catch (error) {
            if (!(error instanceof ConfigError)) throw error;
            outcome = error;
          }
        });
        assert.ok(ms < LOAD_BOUND_MS, `loading took ${ms.toFixed(0)} ms of CPU`);
        outcome ??= new ConfigError([]);
        if (outcome instanceof ConfigError) {
          assert.ok(outcome.diagnostics.length > 0, 'a ConfigError names at least one problem');
          // A substituted value is quoted as it was written (`${{env.SECRET}}`), never as its value.
          for (const diagnostic of outcome.diagnostics)
            assert.ok(!formatDiagnostic(diagnostic).includes(ENV.SECRET), 'a substituted value was printed');
        } else {
          assert.ok(outcome.bindings instanceof Map);
          for (const warning of outcome.warnings) formatDiagnostic(warning);
        }
      }),
      fuzzParameters(400),
    );
  });
});
