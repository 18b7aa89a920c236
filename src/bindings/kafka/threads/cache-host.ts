import type { MessagePort } from 'node:worker_threads';
import type { CachedTopic, CachedTopicConfig, CacheServerApi, TopicChange } from '../cache_server/api.ts';
import {
  reviveRecords,
  type CacheReply,
  type CacheRequest,
  type TopicSnapshot,
  type WireChange,
} from './protocol.ts';
import { decodeError, encodeError } from './wire-error.ts';

/** One worker attachment: the real one on this thread, and what is queued for the worker. */
interface Subscription {
  readonly cached: CachedTopic;
  readonly unsubscribe: () => void;
  changes: WireChange[];
  readonly appended: Map<number, bigint>;
  sentConfig: CachedTopicConfig;
}

/**
 * The main thread's side of one worker's cache port: attaches to, releases and produces through
 * the real cache_server bindings on the worker's behalf, and forwards each attachment's changes.
 * Changes are sent once per event-loop turn per attachment, with `appended` reduced to the latest
 * offset per partition, so a hot topic costs one message a turn whatever its record rate.
 */
export class CacheHost {
  readonly #port: MessagePort;
  readonly #lookup: (binding: string) => CacheServerApi | undefined;
  readonly #subscriptions = new Map<number, Subscription>();
  readonly #dirty = new Set<number>();
  #flushing: NodeJS.Immediate | undefined;
  #closed = false;
  #produceRequests = 0;
  /** Produce requests not answered yet, each with the way to give it up for the worker. */
  readonly #producing = new Map<number, AbortController>();

  constructor(port: MessagePort, lookup: (binding: string) => CacheServerApi | undefined) {
    this.#port = port;
    this.#lookup = lookup;
    port.on('message', (message: CacheRequest) => this.#receive(message));
  }

  /** Attachments the worker holds now. */
  get attachments(): number {
    return this.#subscriptions.size;
  }

  /** Produce calls the worker has made. */
  get produceRequests(): number {
    return this.#produceRequests;
  }

  /** Releases every attachment the worker still holds and closes the port. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#flushing !== undefined) clearImmediate(this.#flushing);
    for (const id of [...this.#subscriptions.keys()]) this.#release(id);
    this.#port.close();
  }

  #receive(message: CacheRequest): void {
    if (this.#closed) return;
    switch (message.type) {
      case 'attach':
        void this.#attach(message.id, message.binding, message.topic, message.timeoutMs);
        break;
      case 'release':
        this.#release(message.id);
        break;
      case 'produce':
        void this.#produce(message);
        break;
      case 'produce-abort':
        this.#producing.get(message.id)?.abort(decodeError(message.reason));
        break;
      case 'offsets':
        void this.#offsets(message);
        break;
    }
  }

  async #attach(id: number, binding: string, topic: string, timeoutMs: number | undefined): Promise<void> {
    let cached: CachedTopic;
    try {
      cached = await this.#server(binding).attach(topic, timeoutMs === undefined ? {} : { timeoutMs });
    } catch (error) {
      this.#send({ type: 'failed', id, error: encodeError(error) });
      return;
    }
    if (this.#closed) {
      cached.release();
      return;
    }
    const subscription: Subscription = {
      cached,
      unsubscribe: cached.onChange((change) => this.#queue(id, change)),
      changes: [],
      appended: new Map(),
      sentConfig: cached.config,
    };
    this.#subscriptions.set(id, subscription);
    const partitions = cached.partitions();
    const snapshot: TopicSnapshot = {
      config: cached.config,
      compacted: cached.compacted,
      defaultOffset: cached.defaultOffset,
      partitions,
      ready: partitions.filter((p) => cached.isReady(p)),
    };
    this.#send({ type: 'attached', id, snapshot });
  }

  #release(id: number): void {
    const subscription = this.#subscriptions.get(id);
    if (subscription === undefined) return;
    this.#subscriptions.delete(id);
    this.#dirty.delete(id);
    subscription.unsubscribe();
    subscription.cached.release();
  }

  async #produce(message: Extract<CacheRequest, { type: 'produce' }>): Promise<void> {
    const { id } = message;
    this.#produceRequests++;
    const abort = new AbortController();
    this.#producing.set(id, abort);
    try {
      const result = await this.#server(message.binding).produce(
        message.topic,
        message.partition,
        reviveRecords(message.records),
        { ...message.options, signal: abort.signal },
      );
      this.#send({ type: 'produced', id, result });
    } catch (error) {
      this.#send({ type: 'failed', id, error: encodeError(error) });
    } finally {
      this.#producing.delete(id);
    }
  }

  async #offsets(message: Extract<CacheRequest, { type: 'offsets' }>): Promise<void> {
    const { id } = message;
    try {
      const cached = this.#subscriptions.get(message.subscription)?.cached;
      if (cached === undefined) throw new Error('the attachment was released');
      const offsets =
        cached.endOffsets === undefined
          ? new Map<number, bigint>()
          : await cached.endOffsets(message.partitions, message.isolation);
      this.#send({ type: 'offsets', id, offsets });
    } catch (error) {
      this.#send({ type: 'failed', id, error: encodeError(error) });
    }
  }

  #server(binding: string): CacheServerApi {
    const server = this.#lookup(binding);
    if (server === undefined) throw new Error(`binding ${binding} is not a running kafka cache_server`);
    return server;
  }

  #queue(id: number, change: TopicChange): void {
    const subscription = this.#subscriptions.get(id);
    if (subscription === undefined) return;
    if (change.type === 'appended') {
      subscription.appended.set(change.partition, change.nextOffset);
    } else if (change.type === 'error') {
      subscription.changes.push({ type: 'error', error: encodeError(change.error) });
    } else {
      subscription.changes.push(change);
    }
    this.#dirty.add(id);
    this.#flushing ??= setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#flushing = undefined;
    for (const id of this.#dirty) {
      const subscription = this.#subscriptions.get(id);
      if (subscription === undefined) continue;
      const config = subscription.cached.config;
      const configChanged = config !== subscription.sentConfig;
      subscription.sentConfig = config;
      this.#send({
        type: 'changes',
        id,
        changes: subscription.changes,
        // postMessage clones now, so the map can be cleared and reused right after.
        appended: subscription.appended,
        ...(configChanged ? { config } : {}),
      });
      subscription.changes = [];
      subscription.appended.clear();
    }
    this.#dirty.clear();
  }

  #send(reply: CacheReply): void {
    if (!this.#closed) this.#port.postMessage(reply);
  }
}
