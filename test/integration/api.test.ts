import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startKafka } from '../../src/embedded/kafka/index.ts';
import type { KafkaCluster } from '../../src/embedded/kafka/types.ts';
import { ConfigError, Gateway, formatProgress } from '../../src/index.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const CHAIN = `
name: api
bindings:
  kafka_cache_client: { type: kafka, kind: cache_client, exit: kafka_cache_server }
  kafka_cache_server: { type: kafka, kind: cache_server, exit: kafka_client }
  kafka_client: { type: kafka, kind: client, options: { servers: ['\${{env.KAFKA_BOOTSTRAP_SERVER}}'] } }
`;

describe('the TypeScript API', () => {
  let cluster: KafkaCluster;
  before(async () => {
    cluster = await startKafka();
    await cluster.createTopic('api-items', { partitions: 3, configs: { 'cleanup.policy': 'compact' } });
    await cluster.createTopic('example-items', { partitions: 2 });
  });
  after(async () => {
    await cluster?.stop();
  });

  it('serves the latest value per key from a compacted topic, then resumes from progress', async () => {
    await cluster.produce('api-items', [
      { key: 'a', value: 'a1' },
      { key: 'b', value: 'b1' },
      { key: 'a', value: 'a2' },
    ]);
    const gateway = await Gateway.start({
      config: { yaml: CHAIN },
      env: { KAFKA_BOOTSTRAP_SERVER: cluster.bootstrap },
    });
    try {
      const stream = await gateway.open('api-items', { capabilities: 'produce_and_fetch' });
      const seen = new Map<string, string>();
      for await (const message of stream) {
        seen.set(String(message.key), String(message.value));
        if (seen.size === 2) break;
      }
      assert.deepEqual(Object.fromEntries(seen), { a: 'a2', b: 'b1' });
      const progress = formatProgress(stream.progress);
      stream.close();

      const resumed = await gateway.open('api-items', {
        capabilities: 'produce_and_fetch',
        partitions: parseResume(progress),
      });
      const ack = await resumed.produce({ key: 'c', value: 'c1' });
      const next = await resumed[Symbol.asyncIterator]().next();
      assert.equal(next.done, false);
      assert.equal(String(next.value?.key), 'c');
      assert.equal(next.value?.partition, ack.partition);
      assert.equal(next.value?.offset, ack.baseOffset);
      resumed.close();
    } finally {
      await gateway.stop();
    }
  });

  it('rejects a config with every problem listed, and a stream without a cache_client', async () => {
    await assert.rejects(
      Gateway.start({
        config: {
          yaml: 'bindings:\n  c: { type: kafka, kind: client, options: { sasl: { mechanism: md5, username: u } } }\n',
          name: 'api.yaml',
        },
        env: {},
      }),
      (error: unknown) =>
        error instanceof ConfigError &&
        error.diagnostics.length === 2 &&
        /^api\.yaml:2:\d+ bindings\.c\.options\.sasl\.mechanism: must be one of plain, scram-sha-256, scram-sha-512, oauthbearer$/m.test(
          error.message,
        ) &&
        /^api\.yaml:2:\d+ bindings\.c\.options\.sasl\.password: is required$/m.test(error.message),
    );
    const gateway = await Gateway.start({
      config: {
        yaml: `bindings:\n  c: { type: kafka, kind: client, options: { servers: ['${cluster.bootstrap}'] } }\n`,
      },
    });
    try {
      assert.throws(() => gateway.open('api-items'), {
        message: 'the config has no kafka cache_client binding to open streams through',
      });
    } finally {
      await gateway.stop();
    }
  });

  it('runs the documented example against the broker', async () => {
    const output = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
      (resolve, reject) => {
        const child = spawn(process.execPath, ['examples/api/live-items.ts'], {
          cwd: ROOT,
          env: {
            PATH: process.env['PATH'] ?? '',
            KAFKA_BOOTSTRAP_SERVER: cluster.bootstrap,
            ITEMS_TOPIC: 'example-items',
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
        child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
        child.on('error', reject);
        child.on('close', (code) => resolve({ code, stdout, stderr }));
      },
    );
    assert.equal(output.code, 0, output.stderr);
    const lines = output.stdout.trim().split('\n');
    assert.match(lines[0] ?? '', /^produced to partition \d at offset 0$/);
    assert.match(lines.at(-1) ?? '', /^apple = \{"price":3\} \(resume with \d:\d(,\d:\d)*\)$/);
  });
});

function parseResume(progress: string): Record<number, string> {
  return Object.fromEntries(progress.split(',').map((entry) => entry.split(':') as [string, string]));
}
