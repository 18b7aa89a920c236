import { Api } from './apis/index.ts';
import type { BrokerPool } from './broker-pool.ts';
import { ConnectionError, KafkaProtocolError } from './errors.ts';
import type { CallOptions, Isolation, OffsetSpec } from './kafka-api.ts';
import type { MetadataCache } from './metadata-cache.ts';
import type { Retrier } from './retry.ts';

/** Questions about a topic that one broker request answers: its configs, a partition's offsets. */
export class TopicQueries {
  readonly #pool: BrokerPool;
  readonly #metadata: MetadataCache;
  readonly #retrier: Retrier;

  constructor(pool: BrokerPool, metadata: MetadataCache, retrier: Retrier) {
    this.#pool = pool;
    this.#metadata = metadata;
    this.#retrier = retrier;
  }

  async describeTopicConfigs(topic: string, options: CallOptions = {}): Promise<Record<string, string>> {
    return this.#retrier.bounded(
      `describe configs ${topic}`,
      async () => {
        const results = await this.#pool.anyBroker((connection) =>
          connection.request(Api.DescribeConfigs, topic),
        );
        const result = results.find((r) => r.name === topic) ?? results[0];
        if (result === undefined) throw new ConnectionError(`DescribeConfigs for ${topic} came back empty`);
        if (result.errorCode !== 0)
          throw new KafkaProtocolError(result.errorCode, `DescribeConfigs ${topic}`, result.errorMessage);
        const configs: Record<string, string> = {};
        for (const [key, value] of Object.entries(result.configs)) if (value !== null) configs[key] = value;
        return configs;
      },
      options.signal,
    );
  }

  async listOffsets(
    topic: string,
    partition: number,
    spec: OffsetSpec,
    isolation: Isolation = 'read_uncommitted',
    options: CallOptions = {},
  ): Promise<bigint> {
    const timestamp = spec === 'earliest' ? -2n : spec === 'latest' ? -1n : BigInt(spec);
    return this.#retrier.bounded(
      `list offsets ${topic}-${partition}`,
      async () => {
        const { nodeId } = await this.#metadata.leader(topic, partition);
        const connection = await this.#pool.brokerConnection(nodeId);
        const results = await connection.request(Api.ListOffsets, {
          isolationLevel: isolation === 'read_committed' ? 1 : 0,
          topic,
          partitions: [{ partition, timestamp }],
        });
        const result = results.find((r) => r.topic === topic && r.partition === partition);
        if (result === undefined)
          throw new ConnectionError(`ListOffsets for ${topic}-${partition} came back empty`);
        if (result.errorCode !== 0) {
          throw new KafkaProtocolError(
            result.errorCode,
            `ListOffsets ${topic}-${partition} on ${connection.address}`,
          );
        }
        return result.offset;
      },
      options.signal,
    );
  }
}
