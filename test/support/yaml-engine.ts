import { strict as assert } from 'node:assert';
import { pino } from 'pino';
import { defaultRegistry } from '../../src/bindings/index.ts';
import type { TcpServerBinding } from '../../src/bindings/tcp/server.ts';
import { parseConfig } from '../../src/config/index.ts';
import { Engine } from '../../src/engine/engine.ts';

/**
 * Starts every binding of `yaml` (named `file` in errors) with the built-in kinds, logging at
 * KGATE_TEST_LOG (silent unless set). `port` is the first port of its tcp server named `tcp`.
 */
export async function startYamlEngine(
  yaml: string,
  file: string,
  stateDir: string,
): Promise<{ engine: Engine; port: number }> {
  const engine = new Engine(parseConfig(yaml, file), defaultRegistry(), {
    logger: pino({ level: process.env['KGATE_TEST_LOG'] ?? 'silent' }),
    stateDir,
  });
  await engine.start();
  const tcp = engine.binding('tcp') as TcpServerBinding | undefined;
  const port = tcp?.ports[0];
  assert.ok(port !== undefined, 'tcp server listens');
  return { engine, port };
}
