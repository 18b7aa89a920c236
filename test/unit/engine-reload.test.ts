import { strict as assert } from 'node:assert';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { composition } from '../../src/bindings/index.ts';
import type { TcpServerBinding } from '../../src/bindings/tcp/server.ts';
import type { BindingConfig, LoadedConfig } from '../../src/config/index.ts';
import type { Binding, BindingContext } from '../../src/engine/binding.ts';
import { Engine } from '../../src/engine/engine.ts';
import { BindingRegistry } from '../../src/engine/registry.ts';
import { planReload } from '../../src/engine/reload.ts';
import { startGateway } from '../../src/engine/runtime.ts';
import { cpuTimedAsync } from '../support/cpu-time.ts';

function binding(name: string, exit?: string, options: Record<string, unknown> = {}): BindingConfig {
  return { name, type: 'test', kind: 'node', options, routes: [], ...(exit === undefined ? {} : { exit }) };
}

function configOf(...bindings: BindingConfig[]): LoadedConfig {
  return {
    file: 'test.yaml',
    name: 'test',
    bindings: new Map(bindings.map((b) => [b.name, b])),
    warnings: [],
  };
}

// Two listeners sharing one kafka chain, as a gateway with a REST port and an SSE port would.
const base = configOf(
  binding('tcp_rest', 'http_rest'),
  binding('http_rest', 'rest'),
  { ...binding('rest'), routes: [{ when: [{ path: '/a' }], exit: 'cache' }] },
  binding('tcp_sse', 'sse'),
  binding('sse', 'cache'),
  binding('cache', 'client'),
  binding('client'),
);

function edit(config: LoadedConfig, ...bindings: BindingConfig[]): LoadedConfig {
  const next = new Map(config.bindings);
  for (const b of bindings) next.set(b.name, b);
  return { ...config, bindings: next };
}

describe('planReload', () => {
  it('changes nothing for an equal config', () => {
    const plan = planReload(base, structuredClone(base));
    assert.deepEqual(
      { ...plan },
      { added: [], changed: [], removed: [], dependents: [], stop: [], start: [], telemetry: false },
    );
  });

  it('restarts what consults a guard, and what reaches it, when guards change', () => {
    const guard = (issuer: string) =>
      new Map([['jwt0', { name: 'jwt0', type: 'jwt', options: { issuer, keys: [] } }]]);
    const rest = base.bindings.get('rest');
    assert.ok(rest !== undefined);
    const guarded = edit(base, {
      ...rest,
      routes: [{ when: [{ path: '/a' }], exit: 'cache', guarded: { jwt0: [] } }],
    });
    const before = { ...guarded, guards: guard('https://a.example') };
    assert.deepEqual(planReload(before, { ...guarded, guards: guard('https://a.example') }).changed, []);
    const plan = planReload(before, { ...guarded, guards: guard('https://b.example') });
    assert.deepEqual(plan.changed, ['rest']);
    assert.deepEqual(plan.dependents, ['tcp_rest', 'http_rest']);
  });

  it('restarts a changed binding and every binding that reaches it, nothing else', () => {
    const rest = base.bindings.get('rest');
    assert.ok(rest !== undefined);
    const next = edit(base, { ...rest, routes: [...rest.routes, { when: [{ path: '/b' }], exit: 'cache' }] });
    const plan = planReload(base, next);
    assert.deepEqual(plan.changed, ['rest']);
    assert.deepEqual(plan.dependents, ['tcp_rest', 'http_rest']);
    assert.deepEqual(plan.stop, ['tcp_rest', 'http_rest', 'rest']);
    assert.deepEqual(plan.start, ['rest', 'http_rest', 'tcp_rest']);
  });

  it('restarts both listeners when the shared chain changes', () => {
    const plan = planReload(base, edit(base, binding('client', undefined, { servers: ['other:9092'] })));
    assert.deepEqual(new Set(plan.stop), new Set(base.bindings.keys()));
    assert.equal(plan.start.at(-1) === 'tcp_rest' || plan.start.at(-1) === 'tcp_sse', true);
    assert.ok(plan.start.indexOf('client') < plan.start.indexOf('cache'));
    assert.ok(plan.stop.indexOf('cache') < plan.stop.indexOf('client'));
  });

  it('ignores an equal rebuilt binding and notices a type change', () => {
    const sse = { ...binding('sse'), exit: 'cache' };
    assert.deepEqual(planReload(base, edit(base, sse)).changed, []);
    const plan = planReload(base, edit(base, { ...binding('tcp_sse', 'sse'), type: 'other' }));
    assert.deepEqual(plan.changed, ['tcp_sse']);
    assert.deepEqual(plan.dependents, []);
  });

  it('swaps a binding for a new one: the entrant changes, the old one stops, the new one starts', () => {
    const next = configOf(
      ...[...base.bindings.values()].filter((b) => b.name !== 'tcp_sse' && b.name !== 'sse'),
      binding('sse2', 'cache'),
      binding('tcp_sse', 'sse2'),
    );
    const plan = planReload(base, next);
    assert.deepEqual(plan.added, ['sse2']);
    assert.deepEqual(plan.removed, ['sse']);
    assert.deepEqual(plan.changed, ['tcp_sse']);
    assert.deepEqual(plan.stop, ['tcp_sse', 'sse']);
    assert.deepEqual(plan.start, ['sse2', 'tcp_sse']);
  });

  it('reports a telemetry change', () => {
    const next: LoadedConfig = { ...base, telemetry: { exporters: [] } };
    assert.equal(planReload(base, next).telemetry, true);
    assert.deepEqual(planReload(base, next).stop, []);
  });
});

describe('Engine.reload', () => {
  const events: string[] = [];
  /** Each instance records which instance of each exit it looked up at start. */
  const seen = new Map<string, Binding>();
  const registry = new BindingRegistry().register('test', 'node', (ctx: BindingContext): Binding => {
    const self: Binding = {
      name: ctx.config.name,
      async start() {
        if (ctx.config.options['fail'] === true) throw new Error('boom');
        for (const exit of [ctx.config.exit, ...ctx.config.routes.map((r) => r.exit)]) {
          if (exit !== undefined) seen.set(`${ctx.config.name}->${exit}`, ctx.lookup(exit));
        }
        events.push(`start ${ctx.config.name}`);
      },
      async stop() {
        events.push(`stop ${ctx.config.name}`);
      },
    };
    return self;
  });
  const engineOf = (config: LoadedConfig) =>
    new Engine(config, registry, { logger: pino({ level: 'silent' }), stateDir: tmpdir() });

  it('restarts only the planned bindings and leaves every exit reference current', async () => {
    const engine = engineOf(base);
    await engine.start();
    const sse = engine.binding('sse');
    const cache = engine.binding('cache');
    events.length = 0;
    const rest = base.bindings.get('rest');
    assert.ok(rest !== undefined);
    const next = edit(base, { ...rest, options: { changed: true } });
    await engine.reload(next);
    assert.deepEqual(events, [
      'stop tcp_rest',
      'stop http_rest',
      'stop rest',
      'start rest',
      'start http_rest',
      'start tcp_rest',
    ]);
    assert.equal(engine.binding('sse'), sse);
    assert.equal(engine.binding('cache'), cache);
    assert.equal(engine.config, next);
    for (const [edge, target] of seen) {
      const exit = edge.split('->')[1] ?? '';
      assert.equal(target, engine.binding(exit), `${edge} holds the running instance`);
    }
    events.length = 0;
    await engine.stop(1000);
    assert.equal(events.length, base.bindings.size);
    assert.ok(events.indexOf('stop tcp_rest') < events.indexOf('stop rest'));
    assert.ok(events.indexOf('stop cache') < events.indexOf('stop client'));
  });

  it('restores the previous bindings when a new one fails to start', async () => {
    const engine = engineOf(base);
    await engine.start();
    const untouched = engine.binding('tcp_sse');
    events.length = 0;
    const next = edit(base, binding('http_rest', 'rest', { fail: true }));
    await assert.rejects(engine.reload(next), {
      message: 'config reload failed: binding http_rest failed to start: boom; previous bindings restored',
    });
    assert.deepEqual(events, ['stop tcp_rest', 'stop http_rest', 'start http_rest', 'start tcp_rest']);
    assert.equal(engine.config, base);
    assert.equal(engine.binding('tcp_sse'), untouched);
    for (const name of base.bindings.keys()) assert.ok(engine.binding(name) !== undefined, name);
    await engine.stop(1000);
  });

  it('stops removed bindings and starts added ones', async () => {
    const engine = engineOf(base);
    await engine.start();
    events.length = 0;
    const next = configOf(
      ...[...base.bindings.values()].filter((b) => b.name !== 'tcp_sse' && b.name !== 'sse'),
      binding('extra', 'cache'),
    );
    const plan = await engine.reload(next);
    assert.deepEqual(plan.removed, ['tcp_sse', 'sse']);
    assert.deepEqual(events, ['stop tcp_sse', 'stop sse', 'start extra']);
    assert.equal(engine.binding('sse'), undefined);
    events.length = 0;
    await engine.stop(1000);
    assert.equal(events.length, next.bindings.size);
    assert.ok(events.indexOf('stop extra') < events.indexOf('stop cache'));
  });
});

describe('RunningGateway.reload', () => {
  const FIXTURES = new URL('../fixtures/config/', import.meta.url);

  it('keeps the running config when the file becomes an alias bomb, and refuses it at once', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kgate-reload-bomb-'));
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    try {
      await mkdir(join(dir, 'site'));
      await writeFile(join(dir, 'site', 'index.html'), 'served');
      const bomb = await readFile(new URL('mapping-bomb.yaml', FIXTURES), 'utf8');
      // The same chain without the aliases: what runs before the bomb is copied over it.
      const file = join(dir, 'kgate.yaml');
      await writeFile(file, bomb.replace(/^ {6}l\d: .*\n/gm, '').replace('name: bomb', 'name: before'));
      const running = await startGateway({ configFile: file, composition, logger, env: {} });
      try {
        const port = (running.engine.binding('tcp') as TcpServerBinding).ports[0];
        const get = async () => (await fetch(`http://127.0.0.1:${port}/index.html`)).text();
        assert.equal(await get(), 'served');
        const before = running.config;

        await copyFile(new URL('mapping-bomb.yaml', FIXTURES), file);
        // CPU time: the bomb's expansion would take minutes of it, and a loaded machine stretches
        // only the wall-clock time of a reload.
        const { ms } = await cpuTimedAsync(() => running.reload('test'));

        assert.ok(ms < 2_000, `refused in ${ms} ms of CPU`);
        assert.equal(running.config, before);
        assert.equal(await get(), 'served');
        const logged = lines.map((line) => JSON.parse(line) as { msg: string });
        assert.ok(logged.some((l) => /aliases expand to more than 10000 nodes/.test(l.msg)));
        assert.ok(logged.some((l) => l.msg === 'config reload rejected, the running config is kept'));
        assert.ok(!logged.some((l) => l.msg === 'config reloaded'));
      } finally {
        await running.stop(1_000);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
