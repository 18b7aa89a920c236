import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { BindingConfig, LoadedConfig } from '../../src/config/index.ts';
import type { Binding } from '../../src/engine/binding.ts';
import { collectStatus, type CachePartitionStatus } from '../../src/telemetry/index.ts';

function bindingConfig(name: string, kind: string): BindingConfig {
  return { name, type: 'kafka', kind, options: {}, routes: [] };
}

const CONFIG: LoadedConfig = {
  file: 'kgate.yaml',
  name: 'test',
  bindings: new Map([
    ['cache', bindingConfig('cache', 'cache_server')],
    ['south', bindingConfig('south', 'client')],
    ['late', bindingConfig('late', 'client')],
  ]),
  warnings: [],
};

const PARTITION: CachePartitionStatus = {
  topic: 'events',
  partition: 0,
  firstOffset: 0,
  lastOffset: 4,
  nextOffset: 5,
  highWatermark: 7,
  lag: 2,
  bytes: 100,
  messages: 5,
  bootstrap: true,
};

function binding(name: string, extra: object): Binding {
  return { name, start: () => Promise.resolve(), stop: () => Promise.resolve(), ...extra };
}

describe('collectStatus', () => {
  it('reports each binding with the readiness problem, and each cache table', async () => {
    const started = new Map<string, Binding>([
      ['cache', binding('cache', { status: () => [PARTITION] })],
      ['south', binding('south', { connectionProblem: () => Promise.resolve('connection refused') })],
    ]);
    const status = await collectStatus({
      config: CONFIG,
      binding: (name) => started.get(name),
      stopping: () => false,
    });
    assert.deepEqual(status, {
      stopping: false,
      bindings: [
        { name: 'cache', type: 'kafka', kind: 'cache_server', started: true },
        {
          name: 'south',
          type: 'kafka',
          kind: 'client',
          started: true,
          problem: 'no live Kafka broker connection: connection refused',
        },
        { name: 'late', type: 'kafka', kind: 'client', started: false, problem: 'not started' },
      ],
      caches: [{ binding: 'cache', partitions: [PARTITION] }],
    });
  });
});
