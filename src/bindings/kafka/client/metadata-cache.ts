import { Api } from './apis/index.ts';
import type { MetadataResponse, MetadataTopic } from './apis/metadata.ts';
import type { BrokerPool } from './broker-pool.ts';
import { isRetriable, KafkaProtocolError } from './errors.ts';
import type { ClusterMetadata } from './kafka-api.ts';

export interface TopicState {
  readonly meta: MetadataTopic;
  readonly leaders: Map<number, number>;
}

/**
 * The metadata requests are routed by: per topic in use its id and its partitions' leaders, and
 * the brokers (handed to the pool). A topic is looked up when first used and refreshed with all
 * the others after a retriable error; concurrent refreshes share one request.
 */
export class MetadataCache {
  readonly #pool: BrokerPool;
  readonly #topics = new Map<string, TopicState>();
  #refreshing: Promise<void> | undefined;

  constructor(pool: BrokerPool) {
    this.#pool = pool;
  }

  /** Asks some broker for `topics` (null: every topic); nothing is cached until `absorb`. */
  request(topics: readonly string[] | null): Promise<MetadataResponse> {
    return this.#pool.anyBroker((connection) => connection.request(Api.Metadata, topics));
  }

  /** Takes in a response; `replaceBrokers` also when it names none. */
  absorb(response: MetadataResponse, replaceBrokers: boolean): void {
    if (response.brokers.length > 0 || replaceBrokers) this.#pool.setBrokers(response.brokers);
    for (const topic of response.topics) {
      const leaders = new Map<number, number>();
      for (const p of topic.partitions) leaders.set(p.partition, p.leader);
      this.#topics.set(topic.name, { meta: topic, leaders });
    }
  }

  /** Refreshes brokers and every topic in use, plus `extra`; concurrent callers share one request. */
  async refresh(extra: readonly string[]): Promise<void> {
    const wanted = new Set([...this.#topics.keys(), ...extra]);
    while (this.#refreshing !== undefined) {
      await this.#refreshing.catch(() => undefined);
      if (extra.every((t) => this.#topics.has(t))) return;
    }
    const refreshing = this.request([...wanted]).then((response) => this.absorb(response, true));
    this.#refreshing = refreshing;
    try {
      await refreshing;
    } finally {
      this.#refreshing = undefined;
    }
  }

  /** `refresh` that lets retriable errors pass: the retry that follows runs into them anyway. */
  async refreshQuietly(): Promise<void> {
    try {
      await this.refresh([]);
    } catch (error) {
      if (!isRetriable(error)) throw error;
    }
  }

  async #topic(topic: string): Promise<TopicState> {
    let state = this.#topics.get(topic);
    if (state === undefined) {
      await this.refresh([topic]);
      state = this.#topics.get(topic);
    }
    if (state === undefined) throw new KafkaProtocolError(3, `topic ${topic}`);
    if (state.meta.errorCode !== 0) {
      // Forget it so the next attempt asks again.
      this.#topics.delete(topic);
      throw new KafkaProtocolError(state.meta.errorCode, `topic ${topic}`);
    }
    return state;
  }

  /** The node id of the partition's leader, and its topic's state; asks the brokers if unknown. */
  async leader(topic: string, partition: number): Promise<{ nodeId: number; state: TopicState }> {
    const state = await this.#topic(topic);
    const leader = state.leaders.get(partition);
    if (leader === undefined) throw new KafkaProtocolError(3, `partition ${topic}-${partition}`);
    if (leader < 0) throw new KafkaProtocolError(5, `partition ${topic}-${partition}`);
    return { nodeId: leader, state };
  }
}

/** A Metadata response as the client's callers see it, error codes turned into errors. */
export function clusterMetadataOf(response: MetadataResponse): ClusterMetadata {
  return {
    clusterId: response.clusterId,
    controllerId: response.controllerId,
    brokers: response.brokers,
    topics: response.topics.map((t) => ({
      name: t.name,
      topicId: t.topicId,
      internal: t.internal,
      error: t.errorCode === 0 ? null : new KafkaProtocolError(t.errorCode, `topic ${t.name}`),
      partitions: t.partitions.map((p) => ({
        partition: p.partition,
        leader: p.leader,
        leaderEpoch: p.leaderEpoch,
        replicas: p.replicas,
        isr: p.isr,
        offlineReplicas: p.offlineReplicas,
        error:
          p.errorCode === 0
            ? null
            : new KafkaProtocolError(p.errorCode, `partition ${t.name}-${p.partition}`),
      })),
    })),
  };
}
