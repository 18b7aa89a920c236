import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import {
  AuthenticationError,
  createKafkaClientBinding,
  KafkaClient,
  type KafkaClientBinding,
  type KafkaClientOptions,
  type KafkaRecord,
  OffsetOutOfRangeError,
  type PasswordMechanism,
  TlsError,
} from '../../src/bindings/kafka/client/index.ts';
import { ensureKafkaLibs, startKafka, type KafkaCluster } from '../../src/embedded/kafka/index.ts';

let kafka: KafkaCluster;
const clients: KafkaClient[] = [];

function client(options: Partial<KafkaClientOptions> = {}): KafkaClient {
  const c = new KafkaClient({ servers: kafka.bootstrap.split(','), retryMaxMs: 500, ...options });
  clients.push(c);
  return c;
}

let topicCounter = 0;
async function topic(partitions = 1, configs?: Record<string, string>): Promise<string> {
  const name = `t${++topicCounter}-${Date.now()}`;
  await kafka.createTopic(name, { partitions, ...(configs === undefined ? {} : { configs }) });
  return name;
}

/** Reads until `count` records have arrived (or the high watermark is reached). */
async function readRecords(
  c: KafkaClient,
  t: string,
  partition: number,
  count: number,
  from = 0n,
): Promise<KafkaRecord[]> {
  const out: KafkaRecord[] = [];
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 20_000);
  try {
    for await (const result of c.fetch(t, partition, from, { signal: controller.signal })) {
      for (const batch of result.batches) if (!batch.control) out.push(...batch.records);
      if (out.length >= count) break;
    }
  } finally {
    clearTimeout(timer);
  }
  return out;
}

function run(command: string, args: readonly string[], input?: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`${command} exited ${code}: ${err}`)),
    );
    child.stdin.end(input);
  });
}

/** Consumes with kcat; key and value come back byte for byte (lengths first, then raw bytes). */
async function kcatConsume(
  t: string,
  partition: number,
  count: number,
): Promise<{ key: Buffer | null; value: Buffer | null; headers: string }[]> {
  const raw = await run('kcat', [
    '-C',
    '-b',
    kafka.bootstrap,
    '-t',
    t,
    '-p',
    String(partition),
    '-o',
    'beginning',
    '-c',
    String(count),
    '-e',
    '-q',
    '-f',
    '%K|%S|%h|%k%s',
  ]);
  const out: { key: Buffer | null; value: Buffer | null; headers: string }[] = [];
  let pos = 0;
  const field = (): string => {
    const end = raw.indexOf(0x7c, pos);
    const text = raw.toString('utf8', pos, end);
    pos = end + 1;
    return text;
  };
  while (pos < raw.length) {
    const keyLength = Number(field());
    const valueLength = Number(field());
    const headers = field();
    const key = keyLength < 0 ? null : raw.subarray(pos, pos + keyLength);
    pos += Math.max(0, keyLength);
    const value = valueLength < 0 ? null : raw.subarray(pos, pos + valueLength);
    pos += Math.max(0, valueLength);
    out.push({ key, value, headers });
  }
  return out;
}

before(async () => {
  kafka = await startKafka();
});

after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await kafka?.stop();
});

describe('kafka client against a real broker', () => {
  it('runs as the kafka client binding, with Zilla 2.x credentials', async () => {
    const t = await topic(1);
    const binding = createKafkaClientBinding({
      config: {
        name: 'south_kafka_client',
        type: 'kafka',
        kind: 'client',
        options: {
          servers: [kafka.saslBootstrap],
          authorization: { guard: { credentials: { mechanism: 'scram-sha-512', ...kafka.users.scram512 } } },
        },
        routes: [],
      },
      logger: pino({ level: 'silent' }),
      metrics: new Registry(),
      stateDir: tmpdir(),
      lookup: (name) => {
        throw new Error(`no binding ${name}`);
      },
    }) as KafkaClientBinding;
    await binding.start(AbortSignal.timeout(30_000));
    try {
      await binding.produce(t, 0, [{ value: 'via binding' }]);
      const records = await readRecords(binding.client(t), t, 0, 1);
      assert.equal(records[0]?.value?.toString(), 'via binding');
    } finally {
      await binding.stop(AbortSignal.timeout(5_000));
    }
  });

  it('reads metadata, topic configs and offsets', async () => {
    const t = await topic(3, { 'cleanup.policy': 'compact' });
    const c = client();
    await c.start();
    const metadata = await c.metadata([t, 'missing-topic']);
    const found = metadata.topics.find((x) => x.name === t);
    assert.equal(found?.partitions.length, 3);
    assert.notEqual(found?.topicId, '00000000-0000-0000-0000-000000000000');
    assert.deepEqual(found?.partitions[0]?.replicas, [kafka.brokerIds[0]]);
    assert.equal(
      metadata.topics.find((x) => x.name === 'missing-topic')?.error?.errorName,
      'UNKNOWN_TOPIC_OR_PARTITION',
    );
    assert.equal(metadata.brokers.length, 1);
    const configs = await c.describeTopicConfigs(t);
    assert.equal(configs['cleanup.policy'], 'compact');
    assert.ok(configs['retention.ms'] !== undefined);
    assert.equal(await c.listOffsets(t, 0, 'earliest'), 0n);
    await c.produce(t, 0, [
      { key: 'a', value: 'a' },
      { key: 'b', value: 'b' },
    ]);
    assert.equal(await c.listOffsets(t, 0, 'latest'), 2n);
    assert.equal(await c.listOffsets(t, 0, Date.now() + 60_000), -1n);
  });

  it('produces and fetches on PLAINTEXT, merging concurrent produces into one request', async () => {
    const t = await topic(3);
    const metrics = new Registry();
    const c = client({ metrics, name: 'plain' });
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => c.produce(t, i % 3, [{ key: `k${i}`, value: `v${i}` }])),
    );
    assert.deepEqual(
      results.filter((r) => r.partition === 0).map((r) => r.baseOffset),
      Array.from({ length: 10 }, (_, i) => BigInt(i)),
    );
    const produceRequests = (await metrics.getSingleMetricAsString('kgate_kafka_client_requests_total'))
      .split('\n')
      .filter((l) => l.includes('api="Produce"'));
    const sent = produceRequests.reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
    assert.ok(sent < 30, `30 produce calls took ${sent} requests`);
    const records = await readRecords(c, t, 1, 10);
    assert.deepEqual(
      records.map((r) => r.value?.toString()),
      Array.from({ length: 10 }, (_, i) => `v${i * 3 + 1}`),
    );
    assert.deepEqual(
      records.map((r) => r.offset),
      Array.from({ length: 10 }, (_, i) => BigInt(i)),
    );
  });

  it('carries every partition of a broker over one connection', async () => {
    const t = await topic(4);
    const metrics = new Registry();
    const c = client({ metrics, name: 'shared' });
    const readers = [0, 1, 2, 3].map((p) => readRecords(c, t, p, 5));
    await Promise.all(
      [0, 1, 2, 3].flatMap((p) =>
        Array.from({ length: 5 }, (_, i) => c.produce(t, p, [{ value: `${p}-${i}` }])),
      ),
    );
    const read = await Promise.all(readers);
    assert.deepEqual(
      read.map((r) => r.length),
      [5, 5, 5, 5],
    );
    assert.equal(c.connectionsOpened, 1);
    assert.deepEqual(c.openConnections(), kafka.bootstrap.split(','));
    const opened = await metrics.getSingleMetricAsString('kgate_kafka_client_connections_opened_total');
    assert.match(opened, / 1$/m);
  });

  it('sends the next Fetch only after the previous result was taken', async () => {
    const t = await topic(1);
    const metrics = new Registry();
    const c = client({ metrics, name: 'backpressure', fetchMaxWaitMs: 50 });
    await c.produce(t, 0, [{ value: 'x' }]);
    const fetchCount = async (): Promise<number> => {
      const text = await metrics.getSingleMetricAsString('kgate_kafka_client_requests_total');
      return text
        .split('\n')
        .filter((l) => l.includes('api="Fetch"'))
        .reduce((s, l) => s + Number(l.split(' ').at(-1)), 0);
    };
    const iterator = c.fetch(t, 0, 0n);
    const first = await iterator.next();
    assert.equal(first.value?.batches[0]?.records[0]?.value?.toString(), 'x');
    const before = await fetchCount();
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(await fetchCount(), before, 'no fetch while the consumer holds its result');
    await c.produce(t, 0, [{ value: 'y' }]);
    const second = await iterator.next();
    assert.equal(second.value?.batches[0]?.records[0]?.value?.toString(), 'y');
    await iterator.return?.(undefined);
  });

  for (const codec of ['gzip', 'snappy', 'lz4', 'zstd'] as const) {
    it(`reads ${codec} batches produced by kcat byte for byte`, async () => {
      const t = await topic(1);
      // Printable bytes only: kcat splits its input on the two delimiters below.
      const big = Buffer.alloc(100 * 1024);
      for (let i = 0; i < big.length; i++) big[i] = 0x20 + ((i * 31) % 90);
      const input = Buffer.concat([
        Buffer.from('k1\x1fv1\x1e'),
        Buffer.from('k2\x1f'),
        big,
        Buffer.from('\x1e'),
      ]);
      await run(
        'kcat',
        [
          '-P',
          '-b',
          kafka.bootstrap,
          '-t',
          t,
          '-p',
          '0',
          '-K',
          '\x1f',
          '-D',
          '\x1e',
          '-H',
          'h=1',
          '-X',
          `compression.codec=${codec}`,
          '-X',
          'linger.ms=50',
        ],
        input,
      );
      const records = await readRecords(client(), t, 0, 2);
      assert.equal(records[0]?.key?.toString(), 'k1');
      assert.equal(records[0]?.value?.toString(), 'v1');
      assert.deepEqual(
        records[0]?.headers.map((h) => [h.key, h.value?.toString()]),
        [['h', '1']],
      );
      assert.ok(records[1]?.value?.equals(big));
    });
  }

  it('reads null keys, null values, headers and 100KB values produced by kcat', async () => {
    const t = await topic(1);
    const big = Buffer.alloc(100 * 1024, 0xab);
    await kafka.produce(t, [
      { key: null, value: 'no key', partition: 0 },
      { key: 'tombstone', value: null, partition: 0 },
      { key: 'h', value: 'with headers', partition: 0, headers: { a: '1', b: 'two' } },
      { key: Buffer.from([0, 1, 2, 255]), value: big, partition: 0 },
    ]);
    const records = await readRecords(client(), t, 0, 4);
    assert.equal(records[0]?.key, null);
    assert.equal(records[0]?.value?.toString(), 'no key');
    assert.equal(records[1]?.value, null);
    assert.deepEqual(
      records[2]?.headers.map((h) => [h.key, h.value?.toString()]),
      [
        ['a', '1'],
        ['b', 'two'],
      ],
    );
    assert.deepEqual([...(records[3]?.key ?? [])], [0, 1, 2, 255]);
    assert.ok(records[3]?.value?.equals(big));
  });

  it('writes records kcat reads back byte for byte, with every compression', async () => {
    const t = await topic(1);
    const c = client();
    const big = Buffer.alloc(100 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
    const codecs = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;
    for (const compression of codecs) {
      await c.produce(
        t,
        0,
        [
          { key: Buffer.from([0, 255, 10]), value: big, headers: { codec: compression } },
          { key: null, value: null },
        ],
        { compression },
      );
    }
    const consumed = await kcatConsume(t, 0, codecs.length * 2);
    assert.equal(consumed.length, codecs.length * 2);
    for (let i = 0; i < codecs.length; i++) {
      const record = consumed[i * 2];
      assert.deepEqual([...(record?.key ?? [])], [0, 255, 10]);
      assert.ok(record?.value?.equals(big), `${codecs[i]} value`);
      assert.equal(record?.headers, `codec=${codecs[i]}`);
      assert.equal(consumed[i * 2 + 1]?.key, null);
      assert.equal(consumed[i * 2 + 1]?.value, null);
    }
  });

  it('reports an offset out of range with the log bounds', async () => {
    const t = await topic(1);
    const c = client();
    await c.produce(t, 0, [{ value: 'a' }, { value: 'b' }, { value: 'c' }]);
    await kafka.deleteRecords(t, 0, 2n);
    await assert.rejects(
      async () => {
        for await (const _ of c.fetch(t, 0, 0n)) break;
      },
      (error: unknown) =>
        error instanceof OffsetOutOfRangeError && error.earliest === 2n && error.latest === 3n,
    );
    await assert.rejects(
      async () => {
        for await (const _ of c.fetch(t, 0, 100n)) break;
      },
      (error: unknown) => error instanceof OffsetOutOfRangeError && error.requested === 100n,
    );
  });

  const mechanisms: [PasswordMechanism, 'plain' | 'scram256' | 'scram512'][] = [
    ['PLAIN', 'plain'],
    ['SCRAM-SHA-256', 'scram256'],
    ['SCRAM-SHA-512', 'scram512'],
  ];
  for (const [mechanism, user] of mechanisms) {
    it(`authenticates every connection with SASL ${mechanism}`, async () => {
      const t = await topic(2);
      const c = client({
        servers: kafka.saslBootstrap.split(','),
        sasl: { mechanism, ...kafka.users[user] },
      });
      await c.start();
      await c.produce(t, 1, [{ value: mechanism }]);
      const records = await readRecords(c, t, 1, 1);
      assert.equal(records[0]?.value?.toString(), mechanism);
    });
  }

  it('fails at once with a clear message on a wrong password', async () => {
    const { username } = kafka.users.scram256;
    const c = client({
      servers: kafka.saslBootstrap.split(','),
      sasl: { mechanism: 'SCRAM-SHA-256', username, password: 'wrong' },
    });
    const started = Date.now();
    await assert.rejects(c.start(), (error: unknown) => {
      if (!(error instanceof AuthenticationError)) throw error;
      assert.equal(error.message, `SASL authentication failed for user ${username} with SCRAM-SHA-256`);
      assert.doesNotMatch(String(error.stack), /wrong/);
      return true;
    });
    await assert.rejects(c.produce('whatever', 0, [{ value: 'x' }]), AuthenticationError);
    assert.ok(Date.now() - started < 5_000, 'no retries');
  });

  it('speaks TLS to brokers whose CA it trusts', async () => {
    const t = await topic(1);
    const ca = await readFile(kafka.caFile, 'utf8');
    const c = client({ servers: kafka.sslBootstrap.split(','), tls: { ca } });
    await c.produce(t, 0, [{ value: 'over tls' }]);
    const records = await readRecords(c, t, 0, 1);
    assert.equal(records[0]?.value?.toString(), 'over tls');
  });

  it('refuses a broker certificate it cannot trust, terminally', async () => {
    const c = client({ servers: kafka.sslBootstrap.split(','), tls: {} });
    await assert.rejects(c.start(), (error: unknown) => {
      if (!(error instanceof TlsError)) throw error;
      assert.match(
        error.message,
        /TLS handshake with broker .* failed: certificate not trusted \(SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY/,
      );
      return true;
    });
  });

  it('hides aborted transactions with read_committed', async () => {
    const t = await topic(1);
    const libs = await ensureKafkaLibs();
    const dir = await mkdtemp(join(tmpdir(), 'kgate-txn-'));
    try {
      const source = join(dir, 'Txn.java');
      await writeFile(source, TXN_PRODUCER);
      await run('java', ['-cp', libs.classPath, source, kafka.bootstrap, t]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const c = client();
    const committed: string[] = [];
    const uncommitted: string[] = [];
    for (const [isolation, into] of [
      ['read_committed', committed],
      ['read_uncommitted', uncommitted],
    ] as const) {
      const controller = new AbortController();
      for await (const result of c.fetch(t, 0, 0n, { isolation, signal: controller.signal })) {
        for (const batch of result.batches)
          if (!batch.control) into.push(...batch.records.map((r) => r.value?.toString() ?? ''));
        if (result.nextOffset >= result.lastStableOffset && result.nextOffset >= 6n) break;
      }
    }
    assert.deepEqual(committed, ['committed-1', 'committed-2']);
    assert.deepEqual(uncommitted, ['committed-1', 'committed-2', 'aborted-1', 'aborted-2']);
  });
});

const TXN_PRODUCER = `
import java.util.Properties;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.serialization.StringSerializer;

public class Txn {
  public static void main(String[] args) throws Exception {
    Properties p = new Properties();
    p.put("bootstrap.servers", args[0]);
    p.put("transactional.id", "kgate-test-" + System.nanoTime());
    p.put("key.serializer", StringSerializer.class.getName());
    p.put("value.serializer", StringSerializer.class.getName());
    try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
      producer.initTransactions();
      producer.beginTransaction();
      producer.send(new ProducerRecord<>(args[1], 0, null, "committed-1"));
      producer.send(new ProducerRecord<>(args[1], 0, null, "committed-2"));
      producer.commitTransaction();
      producer.beginTransaction();
      producer.send(new ProducerRecord<>(args[1], 0, null, "aborted-1"));
      producer.send(new ProducerRecord<>(args[1], 0, null, "aborted-2"));
      producer.flush();
      producer.abortTransaction();
    }
  }
}
`;
