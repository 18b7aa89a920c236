import type { KafkaClientBinding } from '../bindings/kafka/client/index.ts';
import type { Running } from '../engine/runtime.ts';

/** What the demo shows once it is up: what kgate sees of the cluster, and what to try next. */
export async function describeDemo(running: Running, bootstrap: string, topic: string): Promise<string> {
  const client = running.engine.binding('kafka_client') as KafkaClientBinding | undefined;
  if (client === undefined) throw new Error('the demo config has no kafka_client binding');
  const metadata = await client.metadata([topic]);
  const lines = [
    '',
    `kgate is running "${running.config.name}" (${[...running.config.bindings.keys()].join(', ')})`,
    `Kafka cluster ${metadata.clusterId ?? '(no id)'} at ${bootstrap}:`,
    ...metadata.brokers.map((broker) => `  broker ${broker.nodeId} ${broker.host}:${broker.port}`),
  ];
  for (const t of metadata.topics) {
    if (t.error !== null) {
      lines.push(`  topic ${t.name}: ${t.error.message}`);
      continue;
    }
    lines.push(`  topic ${t.name}: ${t.partitions.length} partition(s)`);
    for (const p of t.partitions) {
      const latest = await client.listOffsets(t.name, p.partition, 'latest');
      lines.push(`    partition ${p.partition}: leader ${p.leader}, latest offset ${latest}`);
    }
  }
  lines.push(
    '',
    'Try next:',
    `  kcat -b ${bootstrap} -t ${topic} -P -K: <<< 'item-1:{"price":10}'   # produce`,
    `  kcat -b ${bootstrap} -t ${topic} -C -e -f '%p %o %k %s\\n'           # read it back`,
    '  npm run kgate -- validate -c examples/zilla-http-kafka.yaml            # check a Zilla file',
    'Ctrl-C stops kgate and the broker.',
    '',
  );
  return lines.join('\n');
}
