// The real chain the cache_client integration tests run on: cache_client -> cache_server ->
// client -> one embedded broker, wired by the Engine from YAML as a deployment would be.
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { defaultRegistry } from '../../src/bindings/index.ts';
import {
  CacheClientBinding,
  type CacheMessage,
  type CacheStream,
} from '../../src/bindings/kafka/cache_client/index.ts';
import { parseConfig } from '../../src/config/index.ts';
import { startKafka, type KafkaCluster } from '../../src/embedded/kafka/index.ts';
import { Engine } from '../../src/engine/engine.ts';

export const chainAvailable = defaultRegistry().get('kafka', 'cache_server') !== undefined;

export interface Chain {
  readonly kafka: KafkaCluster;
  readonly engine: Engine;
  readonly client: CacheClientBinding;
  topic(partitions: number, configs?: Record<string, string>): Promise<string>;
  kcat(args: readonly string[], input?: string | Buffer): Promise<string>;
  stop(): Promise<void>;
}

export async function startChain(name: string): Promise<Chain> {
  const kafka = await startKafka();
  const stateDir = await mkdtemp(join(tmpdir(), `kgate-${name}-`));
  const yaml = [
    `name: ${name}`,
    'bindings:',
    '  north: { type: kafka, kind: cache_client, exit: cache }',
    '  cache: { type: kafka, kind: cache_server, exit: south }',
    `  south: { type: kafka, kind: client, options: { servers: ["${kafka.bootstrap}"] } }`,
  ].join('\n');
  const engine = new Engine(parseConfig(yaml, `${name}.yaml`), defaultRegistry(), {
    logger: pino({ level: process.env['KGATE_TEST_LOG'] ?? 'silent' }),
    stateDir,
  });
  await engine.start();
  const north = engine.binding('north');
  assert.ok(north instanceof CacheClientBinding);
  let counter = 0;
  return {
    kafka,
    engine,
    client: north,
    async topic(partitions, configs) {
      const t = `${name}-${++counter}-${Date.now()}`;
      await kafka.createTopic(t, { partitions, ...(configs === undefined ? {} : { configs }) });
      return t;
    },
    kcat(args, input) {
      return new Promise((resolve, reject) => {
        const child = spawn('kcat', ['-b', kafka.bootstrap, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
        child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
        child.on('error', reject);
        child.on('close', (code) =>
          code === 0 ? resolve(out) : reject(new Error(`kcat exited ${code}: ${err}`)),
        );
        child.stdin.end(input);
      });
    },
    async stop() {
      await engine.stop(5_000);
      await kafka.stop();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}

/** The next message, or 'timeout' after ms; a timed-out next() is left pending on the stream. */
export async function nextWithin(
  stream: CacheStream,
  ms: number,
): Promise<{ message: CacheMessage } | { timeout: Promise<IteratorResult<CacheMessage>> }> {
  const pending = stream.next();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
  const got = await Promise.race([pending, timeout]);
  clearTimeout(timer);
  if (got === 'timeout') return { timeout: pending };
  if (got.done === true) throw new Error('stream ended');
  return { message: got.value };
}

/** Exactly `count` messages within timeoutMs, or a failure saying how many came. */
export async function take(stream: CacheStream, count: number, timeoutMs = 30_000): Promise<CacheMessage[]> {
  const out: CacheMessage[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < count) {
    const got = await nextWithin(stream, Math.max(1, deadline - Date.now()));
    if ('timeout' in got) throw new Error(`only ${out.length} of ${count} messages arrived`);
    out.push(got.message);
  }
  return out;
}

/**
 * Messages until the stream stays idle for quietMs; the next() left pending then is returned so
 * the caller can keep the stream in order.
 */
export async function drain(
  stream: CacheStream,
  quietMs: number,
  limitMs = 30_000,
): Promise<{ messages: CacheMessage[]; pending: Promise<IteratorResult<CacheMessage>> }> {
  const messages: CacheMessage[] = [];
  const deadline = Date.now() + limitMs;
  for (;;) {
    if (Date.now() > deadline) throw new Error(`stream still busy after ${limitMs} ms`);
    const got = await nextWithin(stream, quietMs);
    if ('timeout' in got) return { messages, pending: got.timeout };
    messages.push(got.message);
  }
}

export async function waitFor(
  what: string,
  test: () => boolean | Promise<boolean>,
  ms = 20_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await test())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export const str = (b: Buffer | null): string => (b === null ? 'null' : b.toString());
