import type { ProduceResult } from '../client/index.ts';

/**
 * Per topic partition, the offset just past the last record a produce through this binding got
 * acknowledged for. A read "up to now" (a GET of a key, a snapshot) waits for the cache to reach
 * it as well as the broker's end the cache last heard of, so a client that was answered for its
 * write and then reads sees that write, although the cache's fetch may not have brought it yet.
 */
export class ProducedEnds {
  readonly #ends = new Map<string, Map<number, bigint>>();

  /** Records an acknowledged produce; acks=0 results (no offsets) say nothing and are ignored. */
  note(topic: string, partition: number, result: ProduceResult): void {
    const last = result.offsets[result.offsets.length - 1];
    if (last === undefined || last < 0n) return;
    let partitions = this.#ends.get(topic);
    if (partitions === undefined) {
      partitions = new Map();
      this.#ends.set(topic, partitions);
    }
    const end = last + 1n;
    if ((partitions.get(partition) ?? -1n) < end) partitions.set(partition, end);
  }

  /** -1n when nothing was produced to the partition through this binding. */
  get(topic: string, partition: number): bigint {
    return this.#ends.get(topic)?.get(partition) ?? -1n;
  }

  /** The partition's cache was reset (topic recreated, log cut short): old offsets mean nothing now. */
  forget(topic: string, partition: number): void {
    this.#ends.get(topic)?.delete(partition);
  }

  /** The topic was deleted: the offsets of every partition of it mean nothing now. */
  forgetTopic(topic: string): void {
    this.#ends.delete(topic);
  }
}
