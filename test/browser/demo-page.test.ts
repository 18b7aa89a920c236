import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { chromium, type Page } from 'playwright-core';
import { pino } from 'pino';
import { defaultRegistry } from '../../src/bindings/index.ts';
import { loadConfigFile } from '../../src/config/index.ts';
import { startKafka, type KafkaCluster } from '../../src/embedded/kafka/index.ts';
import { Engine } from '../../src/engine/engine.ts';
import { BindingRegistry } from '../../src/engine/registry.ts';
import { reservePort } from '../support/ports.ts';

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed`;
const DEMO_CONFIG = fileURLToPath(new URL('../../examples/demo.yaml', import.meta.url));

let kafka: KafkaCluster;
let stateDir: string;
let port: number;
let engine: Engine | undefined;

/**
 * The default registry, its filesystem binding told which file the config came from so that the
 * demo's relative location resolves beside examples/demo.yaml whatever the working directory.
 */
function registryFor(configFile: string): BindingRegistry {
  const base = defaultRegistry();
  const registry = new BindingRegistry();
  for (const [type, kinds] of base.entries()) {
    for (const kind of kinds) {
      const factory = base.get(type, kind);
      if (factory === undefined) continue;
      registry.register(
        type,
        kind,
        type === 'filesystem' ? (context) => factory({ ...context, configFile } as typeof context) : factory,
      );
    }
  }
  return registry;
}

async function startDemo(): Promise<Engine> {
  const config = await loadConfigFile(DEMO_CONFIG, {
    KAFKA_BOOTSTRAP_SERVER: kafka.bootstrap,
    KGATE_DEMO_PORT: String(port),
  });
  const started = new Engine(config, registryFor(DEMO_CONFIG), {
    logger: pino({ level: process.env['KGATE_TEST_LOG'] ?? 'silent' }),
    stateDir,
  });
  await started.start();
  return started;
}

interface Shown {
  key: string;
  value: string;
  updates: string;
}

function shown(tab: Page): Promise<Shown[]> {
  return tab.$$eval('#items li', (items) =>
    items.map((li) => ({
      key: li.getAttribute('data-key') ?? '',
      value: li.querySelector('.value')?.textContent ?? '',
      updates: li.getAttribute('data-updates') ?? '',
    })),
  );
}

async function waitForKeys(tab: Page, keys: string[]): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const present = (await shown(tab)).map((item) => item.key);
    if (keys.every((k) => present.includes(k))) return;
    if (Date.now() > deadline)
      assert.fail(`the page shows ${present.join(', ')}, not all of ${keys.join(', ')}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

before(async () => {
  if (skip !== false) return;
  kafka = await startKafka();
  await kafka.createTopic('items', { partitions: 3, configs: { 'cleanup.policy': 'compact' } });
  stateDir = await mkdtemp(join(tmpdir(), 'kgate-demo-page-'));
  port = await reservePort();
  engine = await startDemo();
});

after(async () => {
  if (skip !== false) return;
  await engine?.stop(5_000);
  await kafka?.stop();
  if (stateDir !== undefined) await rm(stateDir, { recursive: true, force: true });
});

describe('the demo page', { skip, timeout: 60_000 }, () => {
  it('shows items live, writes through its form and carries on across a kgate restart without loss or duplicates', async () => {
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
      ],
    });
    try {
      const tab = await browser.newPage();
      await tab.goto(`http://127.0.0.1:${port}/`);
      await tab.waitForSelector('#status[data-state="open"]', { timeout: 20_000 });

      await kafka.produce('items', [{ key: 'apple', value: '{"color":"red"}' }]);
      await waitForKeys(tab, ['apple']);

      await tab.fill('#put input[name="id"]', 'banana');
      await tab.fill('#put input[name="value"]', '{"color":"yellow"}');
      await tab.click('#put button');
      await waitForKeys(tab, ['apple', 'banana']);

      // A kgate restart on the same cache while the page stays open.
      await engine?.stop(5_000);
      engine = undefined;
      engine = await startDemo();

      await kafka.produce('items', [{ key: 'cherry', value: '{"color":"dark red"}' }]);
      await waitForKeys(tab, ['apple', 'banana', 'cherry']);
      // A replay after the reconnect would arrive right behind the new item.
      await new Promise((resolve) => setTimeout(resolve, 500));

      assert.deepEqual(await shown(tab), [
        { key: 'apple', value: '{"color":"red"}', updates: '1' },
        { key: 'banana', value: '{"color":"yellow"}', updates: '1' },
        { key: 'cherry', value: '{"color":"dark red"}', updates: '1' },
      ]);
      assert.equal(await tab.textContent('#error'), '');
    } finally {
      await browser.close();
    }
  });
});
