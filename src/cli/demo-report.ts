import type { CacheClientBinding } from '../bindings/kafka/cache_client/index.ts';
import type { KafkaClientBinding } from '../bindings/kafka/client/index.ts';
import type { TcpServerBinding } from '../bindings/tcp/server.ts';
import type { Running } from '../engine/runtime.ts';

const SAMPLE_ITEMS: readonly [string, string][] = [
  ['apple', '{"name":"apple","price":3}'],
  ['pear', '{"name":"pear","price":4}'],
  ['plum', '{"name":"plum","price":2}'],
];

/**
 * What the demo shows once it is up: a few items produced through kgate itself, what kgate sees of
 * the cluster, and the requests to try against the running gateway.
 */
export async function describeDemo(running: Running, bootstrap: string, topic: string): Promise<string> {
  const client = running.engine.binding('kafka_client') as KafkaClientBinding | undefined;
  const cacheClient = running.engine.binding('kafka_cache_client') as CacheClientBinding | undefined;
  const tcp = running.engine.binding('north_tcp_server') as TcpServerBinding | undefined;
  if (client === undefined || cacheClient === undefined || tcp === undefined) {
    throw new Error('the demo config needs kafka_client, kafka_cache_client and north_tcp_server bindings');
  }
  const producer = await cacheClient.open(topic, { capabilities: 'produce' });
  try {
    await Promise.all(SAMPLE_ITEMS.map(([key, value]) => producer.produce({ key, value })));
  } finally {
    producer.close();
  }
  const metadata = await client.metadata([topic]);
  const port = tcp.ports[0];
  const base = `http://127.0.0.1:${port}`;
  const lines = [
    '',
    `kgate is running "${running.config.name}" (${running.config.bindings.size} bindings)`,
    `Kafka cluster ${metadata.clusterId ?? '(no id)'} at ${bootstrap}:`,
    ...metadata.brokers.map((broker) => `  broker ${broker.nodeId} ${broker.host}:${broker.port}`),
  ];
  for (const t of metadata.topics) {
    if (t.error !== null) {
      lines.push(`  topic ${t.name}: ${t.error.message}`);
      continue;
    }
    lines.push(
      `  topic ${t.name}: ${t.partitions.length} partition(s), ${SAMPLE_ITEMS.length} sample items produced`,
    );
  }
  lines.push(
    '',
    'Try next:',
    `  open ${base}/ in a browser                          # a live list of the topic, with a form to PUT items`,
    `  curl ${base}/items                                  # latest value of every key, from the cache`,
    `  curl -i ${base}/items/apple                         # one item, with its ETag`,
    `  curl -N ${base}/events/items                        # every change as Server-Sent Events`,
    `  curl -X PUT -H 'content-type: application/json' -d '{"name":"kiwi","price":5}' ${base}/items/kiwi`,
    `  curl -X DELETE ${base}/items/pear                   # a tombstone`,
    '  npm run kgate -- validate -c examples/zilla-http-kafka.yaml',
    'Ctrl-C stops kgate and the broker.',
    '',
  );
  return lines.join('\n');
}
