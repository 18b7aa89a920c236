// kgate as a library: a gateway in this process, one merged stream over every partition of a
// topic, and a produce acknowledged by Kafka. Run with a broker at KAFKA_BOOTSTRAP_SERVER and a
// topic named by ITEMS_TOPIC (default `items`):
//   KAFKA_BOOTSTRAP_SERVER=localhost:9092 node examples/api/live-items.ts
import { Gateway, formatProgress } from 'kgate';

const topic = process.env['ITEMS_TOPIC'] ?? 'items';
const gateway = await Gateway.start({
  config: {
    yaml: `
name: api-example
bindings:
  kafka_cache_client: { type: kafka, kind: cache_client, exit: kafka_cache_server }
  kafka_cache_server: { type: kafka, kind: cache_server, exit: kafka_client }
  kafka_client:
    type: kafka
    kind: client
    options:
      servers: ['\${{env.KAFKA_BOOTSTRAP_SERVER}}']
`,
  },
});

try {
  const stream = await gateway.open(topic, {
    capabilities: 'produce_and_fetch',
    // Only messages whose key is `apple` or that carry the header `color: red`.
    filters: [[{ key: Buffer.from('apple') }], [{ header: { name: 'color', value: Buffer.from('red') } }]],
  });
  const ack = await stream.produce({ key: 'apple', value: '{"price":3}' });
  console.log(`produced to partition ${ack.partition} at offset ${ack.baseOffset}`);
  // The stream is an async iterable: the next message is read from the cache only when asked for.
  for await (const message of stream) {
    console.log(
      `${message.key?.toString()} = ${message.value?.toString()} (resume with ${formatProgress(message.progress)})`,
    );
    if (message.partition === ack.partition && message.offset === ack.baseOffset) break;
  }
  stream.close();
} finally {
  await gateway.stop();
}
