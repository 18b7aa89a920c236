import type { Logger } from 'pino';
import type { Binding, BindingContext } from '../../../engine/binding.ts';
import { CacheStore, type PartitionStore } from '../cache/index.ts';
import { untilAborted } from '../../../engine/abort.ts';
import type {
  AttachOptions,
  CachedTopic,
  CachedTopicConfig,
  CacheServerApi,
  DefaultOffset,
  TopicChange,
} from '../cache_server/api.ts';
import { ProducedEnds } from '../cache_server/produced-ends.ts';
import {
  KafkaWaitError,
  type ProduceOptions,
  type ProduceRecord,
  type ProduceResult,
} from '../client/index.ts';
import { handleListeners } from '../cache_server/handle-listeners.ts';
import type { CacheRpcClient } from './cache-rpc.ts';
import type { CacheReply, TopicSnapshot } from './protocol.ts';
import { decodeError } from './wire-error.ts';

type ChangesMessage = Extract<CacheReply, { type: 'changes' }>;
type Listener = (change: TopicChange) => void;

/**
 * One topic as a worker thread sees it: a single attachment on the main thread shared by every
 * stream of this thread on the topic. Records are read from this thread's reader of the LMDB
 * environment; each change batch first refreshes the read snapshot and the metadata of the
 * partitions it names, so that a stream woken by it reads at least what was announced.
 */
class RemoteTopic {
  readonly topic: string;
  readonly defaultOffset: DefaultOffset;
  readonly id: number;
  #config: CachedTopicConfig;
  #partitions: number[];
  readonly #ready: Set<number>;
  readonly #store: CacheStore;
  readonly #produced: ProducedEnds;
  readonly endOffsets: NonNullable<CachedTopic['endOffsets']>;
  readonly #listeners = new Set<Listener>();
  readonly #onIdle: (topic: RemoteTopic) => void;
  #refs = 0;
  /** No handle left (or the topic failed): a new attach() needs a new attachment. */
  released = false;

  constructor(
    topic: string,
    id: number,
    snapshot: TopicSnapshot,
    store: CacheStore,
    produced: ProducedEnds,
    endOffsets: RemoteTopic['endOffsets'],
    onIdle: (topic: RemoteTopic) => void,
  ) {
    this.endOffsets = endOffsets;
    this.#produced = produced;
    this.topic = topic;
    this.id = id;
    this.defaultOffset = snapshot.defaultOffset;
    this.#config = snapshot.config;
    this.#partitions = [...snapshot.partitions];
    this.#ready = new Set(snapshot.ready);
    this.#store = store;
    this.#onIdle = onIdle;
    store.refresh();
    for (const partition of this.#partitions) store.partition(topic, partition).reload();
  }

  apply(batch: ChangesMessage): void {
    if (batch.config !== undefined) this.#config = batch.config;
    const store = this.#store;
    store.refresh();
    const changes: TopicChange[] = [];
    for (const change of batch.changes) {
      switch (change.type) {
        case 'ready':
          this.#ready.add(change.partition);
          store.partition(this.topic, change.partition).reload();
          changes.push(change);
          break;
        case 'partitions': {
          // The whole list as the main thread has it: new partitions join, vanished ones leave.
          this.#partitions = [...change.partitions].sort((a, b) => a - b);
          const live = new Set(this.#partitions);
          for (const partition of this.#ready) if (!live.has(partition)) this.#ready.delete(partition);
          changes.push(change);
          break;
        }
        case 'truncated':
          store.partition(this.topic, change.partition).reload();
          changes.push(change);
          break;
        case 'error':
          // Terminal for the attachment: later attach() calls ask the main thread again.
          this.released = true;
          changes.push({ type: 'error', error: decodeError(change.error) });
          break;
      }
    }
    for (const [partition, nextOffset] of batch.appended) {
      store.partition(this.topic, partition).reload();
      changes.push({ type: 'appended', partition, nextOffset });
    }
    for (const change of changes) for (const listener of this.#listeners) listener(change);
  }

  /** A new CachedTopic on this attachment; its release() gives the reference back. */
  handle(): CachedTopic {
    this.#refs++;
    const config = (): CachedTopicConfig => this.#config;
    return {
      topic: this.topic,
      get config(): CachedTopicConfig {
        return config();
      },
      get compacted(): boolean {
        return config().cleanupPolicy.includes('compact');
      },
      defaultOffset: this.defaultOffset,
      partitions: () => this.#partitions,
      isReady: (partition) => this.#ready.has(partition),
      producedEnd: (partition) => this.#produced.get(this.topic, partition),
      endOffsets: this.endOffsets,
      store: (partition): PartitionStore => this.#store.partition(this.topic, partition),
      ...handleListeners(this.#listeners, () => {
        if (--this.#refs === 0) {
          this.released = true;
          this.#onIdle(this);
        }
      }),
    };
  }
}

/**
 * The `kafka cache_server` binding as a worker thread runs it: the real one runs on the main
 * thread, which fetches from Kafka, writes the cache and maintains it. This one reads the same
 * LMDB environment (opened for reading only) and forwards attach, release and produce to the main
 * thread over the worker's cache port.
 */
export class RemoteCacheServerBinding implements Binding, CacheServerApi {
  readonly name: string;
  readonly #context: BindingContext;
  readonly #rpc: CacheRpcClient;
  readonly #log: Logger;
  readonly #topics = new Map<string, RemoteTopic>();
  readonly #subscribing = new Map<string, Promise<RemoteTopic>>();
  /** What this thread produced: the main thread's cache_server keeps the ends of every thread's. */
  readonly #produced = new ProducedEnds();
  #store: CacheStore | undefined;

  constructor(context: BindingContext, rpc: CacheRpcClient) {
    this.#context = context;
    this.#rpc = rpc;
    this.name = context.config.name;
    this.#log = context.logger;
  }

  start(_signal: AbortSignal): Promise<void> {
    // The main thread started its cache_server (which creates the environment) before this.
    this.#store = CacheStore.open(this.#context.stateDir, { reader: true });
    this.#log.debug({ dir: this.#context.stateDir }, 'reading the cache of the main thread');
    return Promise.resolve();
  }

  async stop(_signal: AbortSignal): Promise<void> {
    for (const topic of this.#topics.values()) {
      topic.released = true;
      this.#rpc.release(topic.id);
    }
    this.#topics.clear();
    const store = this.#store;
    this.#store = undefined;
    await store?.close();
  }

  async attach(topic: string, options: AttachOptions = {}): Promise<CachedTopic> {
    const { signal, timeoutMs } = options;
    const started = Date.now();
    for (;;) {
      const known = this.#topics.get(topic);
      if (known !== undefined && !known.released) return known.handle();
      let subscribing = this.#subscribing.get(topic);
      if (subscribing === undefined) {
        const left = timeoutMs === undefined ? undefined : Math.max(0, timeoutMs - (Date.now() - started));
        subscribing = this.#subscribe(topic, left);
        this.#subscribing.set(topic, subscribing);
        const done = (): void => {
          this.#subscribing.delete(topic);
        };
        subscribing.then(done, done);
      }
      let remote: RemoteTopic;
      try {
        remote = signal === undefined ? await subscribing : await untilAborted(subscribing, signal);
      } catch (error) {
        if (signal?.aborted === true) {
          // Nobody may be left to take the attachment once it comes: it is given back then.
          subscribing.then(
            (late) => {
              if (!late.released) late.handle().release();
            },
            () => undefined,
          );
          throw error;
        }
        // The subscription was another caller's, and ran out of that caller's time, not this one's.
        const outOfTime = timeoutMs !== undefined && Date.now() - started >= timeoutMs;
        if (error instanceof KafkaWaitError && !outOfTime) continue;
        throw error;
      }
      // Another caller may have taken and released it meanwhile; then attach anew.
      if (!remote.released) return remote.handle();
    }
  }

  async produce(
    topic: string,
    partition: number | undefined,
    records: readonly ProduceRecord[],
    options?: ProduceOptions,
  ): Promise<ProduceResult & { readonly partition: number }> {
    // A signal cannot cross threads: the main thread is told when it aborts, and gives the call up.
    const { signal, ...rest } = options ?? {};
    const result = await this.#rpc.produce(this.name, topic, partition, records, rest, signal);
    this.#produced.note(topic, result.partition, result);
    return result;
  }

  async #subscribe(topic: string, timeoutMs: number | undefined): Promise<RemoteTopic> {
    let remote: RemoteTopic | undefined = undefined;
    const { id, snapshot } = await this.#rpc.attach(
      this.name,
      topic,
      (batch) => remote?.apply(batch),
      timeoutMs,
    );
    const store = this.#store;
    if (store === undefined) {
      this.#rpc.release(id);
      throw new Error(`binding ${this.name} is not running`);
    }
    const endOffsets: RemoteTopic['endOffsets'] = (partitions, isolation) =>
      this.#rpc.endOffsets(id, partitions, isolation);
    remote = new RemoteTopic(topic, id, snapshot, store, this.#produced, endOffsets, (idle) => {
      if (this.#topics.get(topic) === idle) this.#topics.delete(topic);
      this.#rpc.release(idle.id);
    });
    this.#topics.set(topic, remote);
    return remote;
  }
}
