import { TopicDeletedError } from './errors.ts';
import type { TopicShape } from './topic.ts';

/** One produce call on its way to the broker: where it was aimed, and the way to give it up. */
export interface PendingProduce {
  readonly topic: string;
  /** The incarnation the partition was picked for. */
  readonly topicId: string;
  readonly partition: number;
  /** Aborted when that incarnation is gone; its reason is what the call then rejects with. */
  readonly controller: AbortController;
}

/**
 * Produce calls not answered yet, per topic, so that what the cache_server learns of a topic
 * reaches those the client has not sent: a deleted topic fails them (404) instead of leaving
 * them to wait for a leader until their delivery timeout, and to be written into a topic created
 * later under the same name; a topic created again under a new id has them picked a partition
 * again, by its own partition count.
 */
export class PendingProduces {
  readonly #byTopic = new Map<string, Set<PendingProduce>>();

  add(topic: string, topicId: string, partition: number): PendingProduce {
    const pending: PendingProduce = { topic, topicId, partition, controller: new AbortController() };
    let set = this.#byTopic.get(topic);
    if (set === undefined) {
      set = new Set();
      this.#byTopic.set(topic, set);
    }
    set.add(pending);
    return pending;
  }

  settle(pending: PendingProduce): void {
    const set = this.#byTopic.get(pending.topic);
    if (set === undefined) return;
    set.delete(pending);
    if (set.size === 0) this.#byTopic.delete(pending.topic);
  }

  /** True while some produce to `topic` is unanswered. */
  has(topic: string): boolean {
    return this.#byTopic.has(topic);
  }

  /**
   * The topic is now `shape` (undefined: it does not exist): calls aimed at another incarnation
   * are given up, with a TopicDeletedError saying whether the topic exists again.
   */
  reshaped(topic: string, shape: TopicShape | undefined): void {
    const set = this.#byTopic.get(topic);
    if (set === undefined) return;
    for (const pending of set) {
      if (pending.controller.signal.aborted || pending.topicId === shape?.topicId) continue;
      pending.controller.abort(new TopicDeletedError(topic, shape !== undefined));
    }
  }
}
