import { strict as assert } from 'node:assert';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { formatStatus, statusUrl } from '../../src/cli/commands/status.ts';

describe('kgate status output', () => {
  it('lists bindings with their health, then each cache with its lag', () => {
    const text = formatStatus({
      stopping: false,
      bindings: [
        { name: 'cache', type: 'kafka', kind: 'cache_server', started: true },
        {
          name: 'south',
          type: 'kafka',
          kind: 'client',
          started: true,
          problem: 'no live Kafka broker connection: refused',
        },
      ],
      caches: [
        {
          binding: 'cache',
          partitions: [
            {
              topic: 'events',
              partition: 0,
              firstOffset: 0,
              lastOffset: 9,
              nextOffset: 10,
              highWatermark: 25,
              lag: 15,
              bytes: 640,
              messages: 10,
              bootstrap: true,
            },
            {
              topic: 'events',
              partition: 1,
              firstOffset: null,
              lastOffset: null,
              nextOffset: 0,
              highWatermark: 0,
              lag: 0,
              bytes: 0,
              messages: 0,
              bootstrap: true,
            },
          ],
        },
      ],
    });
    assert.equal(
      text,
      [
        'bindings',
        '  NAME   TYPE   KIND          HEALTH',
        '  cache  kafka  cache_server  ok',
        '  south  kafka  client        no live Kafka broker connection: refused',
        '',
        'cache cache',
        '  TOPIC   PARTITION  FIRST  LAST  NEXT  HIGH WATERMARK  LAG  MESSAGES  BYTES  BOOTSTRAP',
        '  events          0      0     9    10              25   15        10    640  yes',
        '  events          1      -     -     0               0    0         0      0  yes',
        '',
      ].join('\n'),
    );
  });

  it('says so when a cache holds nothing yet, and when the gateway is stopping', () => {
    const text = formatStatus({ stopping: true, bindings: [], caches: [{ binding: 'c', partitions: [] }] });
    assert.match(text, /^kgate is stopping$/m);
    assert.match(text, /^cache c\n {2}\(nothing cached yet\)$/m);
  });

  it('asks --url at /status, whatever path it was given', async () => {
    assert.equal((await statusUrl({ url: 'http://10.0.0.1:7190' })).href, 'http://10.0.0.1:7190/status');
    assert.equal((await statusUrl({ url: 'http://h:1/metrics' })).href, 'http://h:1/status');
    await assert.rejects(statusUrl({ url: 'nope' }), /--url nope is not a URL/);
  });

  it("asks the config's first endpoint that loopback reaches, else its first", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kgate-status-url-'));
    try {
      const urlFor = async (...endpoints: string[]): Promise<string> => {
        const file = join(dir, 'kgate.yaml');
        await writeFile(
          file,
          [
            'telemetry:',
            '  exporters:',
            '    p: { type: prometheus, options: { endpoints: [ ' + endpoints.join(', ') + ' ] } }',
            'bindings:',
            '  tcp: { type: tcp, kind: client }',
            '',
          ].join('\n'),
        );
        return (await statusUrl({ config: file })).href;
      };
      assert.equal(await urlFor('{ port: 7190 }'), 'http://127.0.0.1:7190/status');
      assert.equal(
        await urlFor('{ host: 10.1.2.3, port: 1 }', '{ host: 0.0.0.0, port: 2 }'),
        'http://127.0.0.1:2/status',
      );
      assert.equal(await urlFor('{ host: "::1", port: 3 }'), 'http://[::1]:3/status');
      assert.equal(await urlFor('{ host: 10.1.2.3, port: 4 }'), 'http://10.1.2.3:4/status');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
