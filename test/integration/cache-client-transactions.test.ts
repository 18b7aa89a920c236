import { strict as assert } from 'node:assert';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { CacheStream } from '../../src/bindings/kafka/cache_client/index.ts';
import { ensureKafkaLibs } from '../../src/embedded/kafka/index.ts';
import { chainAvailable, drain, startChain, str, take, type Chain } from './cache-client-harness.ts';

let chain: Chain;
let javaDir: string;

before(async () => {
  if (!chainAvailable) return;
  chain = await startChain('cc-txn');
  javaDir = await mkdtemp(join(tmpdir(), 'kgate-cc-txn-'));
});

after(async () => {
  if (!chainAvailable) return;
  await chain?.stop();
  if (javaDir !== undefined) await rm(javaDir, { recursive: true, force: true });
});

// The Java client's transactions: committed, aborted, committed again, then one left open until
// the test says so on stdin, so a read_committed reader can be caught at the last stable offset.
const TXN_PRODUCER = `
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.Properties;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.serialization.StringSerializer;

public class Txn {
  public static void main(String[] args) throws Exception {
    Properties p = new Properties();
    p.put("bootstrap.servers", args[0]);
    p.put("transactional.id", "kgate-cc-txn-" + System.nanoTime());
    p.put("key.serializer", StringSerializer.class.getName());
    p.put("value.serializer", StringSerializer.class.getName());
    String t = args[1];
    try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
      producer.initTransactions();
      producer.beginTransaction();
      producer.send(new ProducerRecord<>(t, 0, "k1", "c1"));
      producer.send(new ProducerRecord<>(t, 1, "k2", "c2"));
      producer.commitTransaction();
      producer.beginTransaction();
      producer.send(new ProducerRecord<>(t, 0, "k1", "a1"));
      producer.send(new ProducerRecord<>(t, 1, "k2", "a2"));
      producer.send(new ProducerRecord<>(t, 0, "k3", "a3"));
      producer.flush();
      producer.abortTransaction();
      producer.beginTransaction();
      producer.send(new ProducerRecord<>(t, 0, "k3", "c3"));
      producer.commitTransaction();
      producer.beginTransaction();
      producer.send(new ProducerRecord<>(t, 1, "k4", "pending"));
      producer.flush();
      System.out.println("open");
      System.out.flush();
      new BufferedReader(new InputStreamReader(System.in)).readLine();
      producer.commitTransaction();
    }
  }
}
`;

interface Txn {
  /** Resolves once the last transaction is open with its record written. */
  readonly open: Promise<void>;
  commit(): Promise<void>;
}

async function runTransactions(t: string): Promise<Txn> {
  const libs = await ensureKafkaLibs();
  const source = join(javaDir, 'Txn.java');
  await writeFile(source, TXN_PRODUCER);
  const child: ChildProcessWithoutNullStreams = spawn('java', [
    '-cp',
    libs.classPath,
    source,
    chain.kafka.bootstrap,
    t,
  ]);
  let err = '';
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<void>((resolve, reject) =>
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`java exited ${code}: ${err}`)))),
  );
  const open = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('open')) resolve();
    });
    exited.then(() => reject(new Error('java ended before its last transaction')), reject);
  });
  return {
    open,
    async commit() {
      child.stdin.end('commit\n');
      await exited;
    },
  };
}

const values = (ms: readonly { value: Buffer | null }[]): string[] => ms.map((m) => str(m.value)).sort();

describe('cache_client isolation with the Java client transactions', { skip: !chainAvailable }, () => {
  it('hides aborted and still open transactions from read_committed streams', async () => {
    const t = await chain.topic(2);
    const compacted = await chain.topic(2, { 'cleanup.policy': 'compact' });
    const txn = await runTransactions(t);
    const txnCompacted = await runTransactions(compacted);
    await Promise.all([txn.open, txnCompacted.open]);

    const committed = await chain.client.open(t, { defaultOffset: 'historical' });
    const uncommitted = await chain.client.open(t, {
      defaultOffset: 'historical',
      isolation: 'read_uncommitted',
    });
    const latest = await chain.client.open(compacted);
    assert.equal(committed.isolation, 'read_committed', 'the default');

    const before = await drain(committed, 2_000);
    assert.deepEqual(values(before.messages), ['c1', 'c2', 'c3']);
    const latestBefore = await drain(latest, 1_500);
    assert.deepEqual(
      latestBefore.messages.map((m) => `${str(m.key)}=${str(m.value)}`).sort(),
      ['k1=c1', 'k2=c2', 'k3=c3'],
      'an aborted later value does not hide the committed one',
    );
    // Aborted records are there for read_uncommitted; the transaction markers never are.
    const dirty = await take(uncommitted, 6);
    assert.deepEqual(values(dirty), ['a1', 'a2', 'a3', 'c1', 'c2', 'c3']);

    await Promise.all([txn.commit(), txnCompacted.commit()]);
    const after = await before.pending;
    assert.equal(after.done, false);
    assert.equal(str(after.value.value), 'pending');
    const latestAfter = await latestBefore.pending;
    assert.equal(latestAfter.done, false);
    assert.equal(`${str(latestAfter.value.key)}=${str(latestAfter.value.value)}`, 'k4=pending');
    assert.deepEqual(values(await take(uncommitted, 1)), ['pending']);
    for (const stream of [committed, uncommitted, latest] as CacheStream[]) {
      assert.deepEqual((await drain(stream, 700)).messages, [], 'and nothing else');
      stream.close();
    }
  });
});
