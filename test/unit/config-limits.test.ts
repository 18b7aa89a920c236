import { strict as assert } from 'node:assert';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CONFIG_LIMITS, ConfigError, loadConfigFile, parseConfig } from '../../src/config/index.ts';
import { cpuTimed } from '../support/cpu-time.ts';

const FIXTURES = new URL('../fixtures/config/', import.meta.url);
const yaml = (...lines: string[]): string => lines.join('\n') + '\n';

/**
 * The diagnostics of `text`, and the CPU time the loader took to give them: the defects these
 * bounds catch cost a hundred times what the loader does, and a loaded machine stretches only the
 * wall-clock time.
 */
function refused(text: string, file = 'kgate.yaml'): { lines: string[]; ms: number } {
  const { ms, value: error } = cpuTimed(() => {
    try {
      parseConfig(text, file, {});
    } catch (error) {
      return error;
    }
    return undefined;
  });
  assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
  return { lines: error.message.split('\n'), ms };
}

describe('config loader limits', () => {
  it('refuses a 581-byte alias bomb at once, naming the limit and the alias', async () => {
    const text = await readFile(new URL('alias-bomb.yaml', FIXTURES), 'utf8');
    assert.ok(text.length < 600);
    const { lines, ms } = refused(text, 'alias-bomb.yaml');
    assert.deepEqual(lines, [
      `alias-bomb.yaml:7:10 aliases expand to more than ${CONFIG_LIMITS.maxAliasNodes} nodes, the loader's limit (here: *a3)`,
    ]);
    assert.ok(ms < 1_000, `refused in ${ms} ms of CPU`);
  });

  it('refuses an alias bomb hidden in the options of a working config', async () => {
    const text = await readFile(new URL('mapping-bomb.yaml', FIXTURES), 'utf8');
    const { lines, ms } = refused(text, 'mapping-bomb.yaml');
    assert.equal(lines.length, 1);
    assert.match(lines[0] ?? '', /^mapping-bomb\.yaml:\d+:\d+ aliases expand to more than 10000 nodes/);
    assert.ok(ms < 1_000, `refused in ${ms} ms of CPU`);
  });

  it('counts every alias, so many small ones are bounded too, and resolves them in linear time', () => {
    const many = Array.from({ length: 20_000 }, () => '*s').join(', ');
    const { lines, ms } = refused(yaml('s: &s x', `list: [${many}]`, 'bindings: {}'));
    assert.match(lines[0] ?? '', /^kgate\.yaml:2:\d+ aliases expand to more than 10000 nodes/);
    // Resolving each alias by walking the whole document took 112 s; one pass takes a few hundred
    // milliseconds of CPU. 5 s is more than ten times from either.
    assert.ok(ms < 5_000, `refused in ${ms} ms of CPU`);
  });

  it('still follows aliases a config uses to share settings', () => {
    const bindings = Array.from(
      { length: 200 },
      (_, i) => `  c${i}: { type: tcp, kind: client, options: *shared }`,
    );
    const text = yaml(
      'bindings:',
      '  c: { type: tcp, kind: client, options: &shared { host: kafka, port: 9092 } }',
    );
    const config = parseConfig(text + yaml(...bindings), 'kgate.yaml', {});
    assert.equal(config.bindings.size, 201);
    assert.deepEqual(config.bindings.get('c199')?.options, { host: 'kafka', port: 9092 });
  });

  it('refuses nesting past the depth limit at the node that crosses it', () => {
    const depth = CONFIG_LIMITS.maxDepth;
    const nested = (levels: number): string => `x: ${'{a: '.repeat(levels)}1${'}'.repeat(levels)}`;
    // `x` and `depth` keys below it: the value of the last one is the first node past the limit.
    const { lines } = refused(yaml('bindings: { t: { type: tcp, kind: client } }', nested(depth)));
    assert.deepEqual(lines, [
      `kgate.yaml:2:${'x: '.length + '{a: '.length * depth + 1} nested more than ${depth} levels deep, the loader's limit`,
    ]);
    // One level less is within the limit: what is left to say is that `x` is no section.
    assert.deepEqual(refused(yaml('bindings: { t: { type: tcp, kind: client } }', nested(depth - 1))).lines, [
      'kgate.yaml:2:1 unknown section "x"',
    ]);
  });

  it('refuses text larger than the size limit before parsing it', () => {
    const text = yaml('bindings: {}', `# ${'x'.repeat(CONFIG_LIMITS.maxBytes)}`);
    const { lines, ms } = refused(text);
    assert.deepEqual(lines, [
      `kgate.yaml:1:1 file is ${Buffer.byteLength(text)} bytes, more than the loader's limit of 262144 bytes`,
    ]);
    assert.ok(ms < 1_000, `refused in ${ms} ms of CPU`);
  });

  it('finds repeated keys among many in linear time', () => {
    const keys = Array.from({ length: 20_000 }, (_, i) => `  k${i}: v`);
    // The same keys in 200 mappings of 100: as many bytes and nodes, and a hundredth of the
    // comparisons of each key with every earlier one in its mapping.
    const grouped = keys.flatMap((key, i) => (i % 100 === 0 ? [`x${i}:`, key] : [key]));
    const small = refused(yaml(...grouped, '  k19907: again', 'bindings: {}'));
    assert.deepEqual(small.lines, ['kgate.yaml:20201:3 invalid YAML: Map keys must be unique']);
    const { lines, ms } = refused(yaml('x:', ...keys, '  k7: again', 'bindings: {}'));
    assert.deepEqual(lines, ['kgate.yaml:20002:3 invalid YAML: Map keys must be unique']);
    // Comparing each key with every earlier one made one mapping of them cost six times what the
    // small mappings do (2.9 s of CPU against 0.5 s); with a set both cost the same. The ratio
    // holds on a machine of any speed, and CPU time holds on a loaded one.
    assert.ok(ms < small.ms * 3, `refused in ${ms} ms of CPU, ${small.ms} ms in mappings of 100`);
  });

  it('reports the first hundred problems of a file and counts the rest', () => {
    const sections = Array.from({ length: 150 }, (_, i) => `s${i}: 1`);
    const { lines } = refused(yaml('bindings: { t: { type: tcp, kind: client } }', ...sections));
    assert.equal(lines.length, CONFIG_LIMITS.maxDiagnostics + 1);
    assert.equal(lines[99], 'kgate.yaml:101:1 unknown section "s99"');
    assert.equal(lines[100], 'kgate.yaml:101:1 and 50 more problems, not shown');
  });

  it('reads no more of a large file than the size limit and one byte', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kgate-limits-'));
    try {
      const file = join(dir, 'kgate.yaml');
      // A sparse 1 GiB file: reading it whole would take a gigabyte of memory.
      const handle = await open(file, 'w');
      await handle.write('bindings: {}\n');
      await handle.truncate(1024 ** 3);
      await handle.close();
      const before = process.memoryUsage().arrayBuffers;
      await assert.rejects(loadConfigFile(file, {}), {
        message: "kgate.yaml: file is larger than the loader's limit of 262144 bytes",
      });
      assert.ok(process.memoryUsage().arrayBuffers - before < 64 * 1024 * 1024);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
