import type { KafkaApi } from '../../src/bindings/kafka/client/index.ts';
import type { Binding } from '../../src/engine/binding.ts';

/**
 * A Kafka client dressed as the exit binding a cache_server looks up, so tests can build a
 * cache_server over a client they control; `overrides` replaces single calls (to spy on fetches,
 * or to close the client on stop).
 */
export function kafkaExit(
  client: KafkaApi,
  overrides: Partial<Pick<Binding & KafkaApi, 'fetch' | 'stop'>> = {},
): Binding & KafkaApi {
  return {
    name: 'south',
    start: () => Promise.resolve(),
    stop: () => Promise.resolve(),
    metadata: (topics, options) => client.metadata(topics, options),
    describeTopicConfigs: (topic, options) => client.describeTopicConfigs(topic, options),
    listOffsets: (topic, partition, spec, isolation, options) =>
      client.listOffsets(topic, partition, spec, isolation, options),
    fetch: (topic, partition, from, options) => client.fetch(topic, partition, from, options),
    produce: (topic, partition, records, options) => client.produce(topic, partition, records, options),
    ...overrides,
  };
}
