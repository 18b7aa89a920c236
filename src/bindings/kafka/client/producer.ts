import { Api } from './apis/index.ts';
import type { ProducePartitionResponse, ProduceTopicData } from './apis/produce.ts';
import type { BrokerConnection } from './connection.ts';
import { ConnectionError, KafkaProtocolError } from './errors.ts';
import type { ProduceActivity } from './fetcher.ts';
import type { AttemptEnd, PartitionQueue } from './partition-queue.ts';
import type { Acks, ProduceBatch, ProducerIdentity } from './produce-batch.ts';

export type { Acks, ProduceResult, ProducerIdentity } from './produce-batch.ts';

export interface ProducerHooks {
  connect(): Promise<BrokerConnection>;
  /** The producer id and epoch new idempotent batches get now, if one is known. */
  identity(): ProducerIdentity | undefined;
  /** Obtains one; undefined when that failed for good (the waiting batches were failed then). */
  ensureIdentity(): Promise<ProducerIdentity | undefined>;
  /** An attempt of `batch` of `queue` ended. */
  ended(queue: PartitionQueue, batch: ProduceBatch, end: AttemptEnd): void;
  /** No connection to the broker could be opened for `queues`; nothing of theirs was sent. */
  unreachable(queues: readonly PartitionQueue[], error: Error): void;
  readonly timeoutMs: number;
  /** Produce requests the connection carries at once. */
  readonly maxRequests: number;
}

interface Taken {
  readonly queue: PartitionQueue;
  readonly batch: ProduceBatch;
}

/**
 * Sends the batches of the partitions one broker leads. Each Produce request carries at most one
 * batch per partition (brokers take exactly one per partition per request), from every partition
 * that has one ready, all with the same acks; at most `maxRequests` are out at once, and calls
 * made meanwhile wait in their partitions' queues, where they merge into batches for the next
 * request. Which batch a partition sends, and what an answer means for it, is its queue's business.
 */
export class BrokerProducer implements ProduceActivity {
  readonly #hooks: ProducerHooks;
  readonly #queues = new Set<PartitionQueue>();
  #requests = 0;
  #scheduled = false;
  #pumping = false;
  #again = false;
  #lastActiveAt = Date.now();
  #backoffTimer: NodeJS.Timeout | undefined;
  #backoffAt = 0;

  constructor(hooks: ProducerHooks) {
    this.#hooks = hooks;
  }

  /** A Produce request awaits its answer or work is queued: the broker's fetches should not wait. */
  get busy(): boolean {
    if (this.#requests > 0) return true;
    for (const queue of this.#queues) if (!queue.empty) return true;
    return false;
  }

  get lastActiveAt(): number {
    return this.#lastActiveAt;
  }

  /** Produce requests out now. */
  get requests(): number {
    return this.#requests;
  }

  attach(queue: PartitionQueue): void {
    this.#queues.add(queue);
    this.wake();
  }

  detach(queue: PartitionQueue): void {
    this.#queues.delete(queue);
  }

  /** Sends what is ready, on the next turn of the event loop so that calls made in this one merge. */
  wake(): void {
    this.#lastActiveAt = Date.now();
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      void this.#pump();
    });
  }

  async #pump(): Promise<void> {
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#again = false;
        while (this.#requests < this.#hooks.maxRequests && (await this.#sendOne()));
      } while (this.#again);
    } finally {
      this.#pumping = false;
    }
  }

  /** Sends one request if anything is ready; false when nothing was. */
  async #sendOne(): Promise<boolean> {
    if (![...this.#queues].some((q) => q.hasWork(Date.now()))) {
      this.#wakeAfterBackoff();
      return false;
    }
    let identity = this.#hooks.identity();
    if (identity === undefined && [...this.#queues].some((q) => q.wantsIdentity())) {
      identity = await this.#hooks.ensureIdentity();
      if (identity === undefined) return false;
    }
    let connection: BrokerConnection;
    try {
      connection = await this.#hooks.connect();
    } catch (error) {
      this.#hooks.unreachable([...this.#queues], error instanceof Error ? error : new Error(String(error)));
      return false;
    }
    // From here to the request nothing awaits: batches are taken in the order they are written.
    const now = Date.now();
    const current = this.#hooks.identity() ?? identity;
    let acks: Acks | undefined;
    for (const queue of this.#queues) {
      acks = queue.peek(connection, current, now)?.acks;
      if (acks !== undefined) break;
    }
    if (acks === undefined) return false;
    const taken: Taken[] = [];
    for (const queue of this.#queues) {
      const batch = queue.take(connection, current, now, acks);
      if (batch !== undefined) taken.push({ queue, batch });
    }
    this.#requests++;
    this.#lastActiveAt = now;
    void this.#request(connection, acks, taken, now).finally(() => {
      this.#requests--;
      this.wake();
    });
    return true;
  }

  /** Partitions backing off with work queued get their turn when their backoff ends. */
  #wakeAfterBackoff(): void {
    const now = Date.now();
    let at = Infinity;
    for (const queue of this.#queues)
      if (!queue.empty && queue.retryAt > now) at = Math.min(at, queue.retryAt);
    if (at === Infinity || (this.#backoffTimer !== undefined && this.#backoffAt <= at)) return;
    clearTimeout(this.#backoffTimer);
    this.#backoffAt = at;
    this.#backoffTimer = setTimeout(
      () => {
        this.#backoffTimer = undefined;
        this.wake();
      },
      Math.ceil(at - now),
    );
  }

  async #request(
    connection: BrokerConnection,
    acks: Acks,
    taken: readonly Taken[],
    now: number,
  ): Promise<void> {
    const topics = new Map<
      string,
      ProduceTopicData & { partitions: { partition: number; batch: Buffer }[] }
    >();
    const sent: Taken[] = [];
    for (const entry of taken) {
      const { queue, batch } = entry;
      let bytes: Buffer;
      try {
        bytes = batch.encode(now);
      } catch (error) {
        const failure = error instanceof Error ? error : new Error(String(error));
        this.#hooks.ended(queue, batch, { kind: 'lost', error: failure, written: false });
        continue;
      }
      let topic = topics.get(queue.topic);
      if (topic === undefined) {
        topic = { topic: queue.topic, partitions: [] };
        topics.set(queue.topic, topic);
      }
      topic.partitions.push({ partition: queue.partition, batch: bytes });
      sent.push(entry);
    }
    if (sent.length === 0) return;
    let written = false;
    let responses: ProducePartitionResponse[] | undefined;
    try {
      responses = await connection.request(
        Api.Produce,
        { acks, timeoutMs: this.#hooks.timeoutMs, topics: [...topics.values()] },
        {
          noResponse: acks === 0,
          extraTimeoutMs: this.#hooks.timeoutMs,
          onWritten: () => {
            written = true;
          },
        },
      );
    } catch (error) {
      const failure = error instanceof Error ? error : new Error(String(error));
      for (const { queue, batch } of sent)
        this.#hooks.ended(queue, batch, { kind: 'lost', error: failure, written });
      return;
    } finally {
      this.#lastActiveAt = Date.now();
    }
    if (acks === 0 || responses === undefined) {
      for (const { queue, batch } of sent)
        this.#hooks.ended(queue, batch, { kind: 'acked', baseOffset: -1n, logAppendTimeMs: -1n });
      return;
    }
    const byKey = new Map<string, ProducePartitionResponse>();
    for (const r of responses) byKey.set(`${r.topic}:${r.partition}`, r);
    for (const { queue, batch } of sent) {
      const r = byKey.get(`${queue.topic}:${queue.partition}`);
      let end: AttemptEnd;
      if (r === undefined) {
        const error = new ConnectionError(
          `broker ${connection.address} left ${queue.topic}-${queue.partition} out of its Produce response`,
        );
        end = { kind: 'lost', error, written: true };
      } else if (r.errorCode === 0) {
        end = { kind: 'acked', baseOffset: r.baseOffset, logAppendTimeMs: r.logAppendTimeMs };
      } else if (r.errorCode === 46) {
        // DUPLICATE_SEQUENCE_NUMBER: written before, and the broker did not say where.
        end = { kind: 'acked', baseOffset: -1n, logAppendTimeMs: -1n };
      } else {
        const detail =
          r.errorMessage ??
          r.recordErrors.map((e) => `record ${e.batchIndex}: ${e.message ?? ''}`).join('; ');
        const error = new KafkaProtocolError(
          r.errorCode,
          `Produce ${queue.topic}-${queue.partition} to ${connection.address}`,
          detail || null,
        );
        end = { kind: 'rejected', error, logStartOffset: r.logStartOffset };
      }
      this.#hooks.ended(queue, batch, end);
    }
  }
}
