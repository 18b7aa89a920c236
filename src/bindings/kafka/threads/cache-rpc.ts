import type { MessagePort } from 'node:worker_threads';
import type { Isolation, ProduceOptions, ProduceRecord, ProduceResult } from '../client/index.ts';
import type { CacheReply, CacheRequest, TopicSnapshot } from './protocol.ts';
import { decodeError, encodeError } from './wire-error.ts';

type ChangesMessage = Extract<CacheReply, { type: 'changes' }>;
type ProduceAnswer = ProduceResult & { readonly partition: number };

interface Pending<T> {
  resolve(value: T): void;
  reject(error: Error): void;
}

/**
 * A worker thread's side of its cache port: attach, release and produce as calls to the main
 * thread, which runs the cache_server bindings, and the change batches it forwards.
 */
export class CacheRpcClient {
  readonly #port: MessagePort;
  #nextId = 1;
  readonly #attaching = new Map<number, Pending<TopicSnapshot>>();
  readonly #producing = new Map<number, Pending<ProduceAnswer>>();
  readonly #offsets = new Map<number, Pending<ReadonlyMap<number, bigint>>>();
  readonly #subscribers = new Map<number, (batch: ChangesMessage) => void>();
  #closed = false;

  constructor(port: MessagePort) {
    this.#port = port;
    port.on('message', (message: CacheReply) => this.#receive(message));
  }

  /**
   * Attaches on the main thread; `onChanges` receives the attachment's change batches until
   * `release(id)`. Resolves with the subscription id and the topic as it was at attach.
   */
  attach(
    binding: string,
    topic: string,
    onChanges: (batch: ChangesMessage) => void,
    timeoutMs?: number,
  ): Promise<{ id: number; snapshot: TopicSnapshot }> {
    if (this.#closed) return Promise.reject(new Error('the main thread is not serving this worker'));
    const id = this.#nextId++;
    this.#subscribers.set(id, onChanges);
    return new Promise<TopicSnapshot>((resolve, reject) => {
      this.#attaching.set(id, { resolve, reject });
      this.#send({ type: 'attach', id, binding, topic, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
    }).then(
      (snapshot) => ({ id, snapshot }),
      (error: unknown) => {
        this.#subscribers.delete(id);
        throw error;
      },
    );
  }

  release(id: number): void {
    if (!this.#subscribers.delete(id)) return;
    this.#send({ type: 'release', id });
  }

  /**
   * Produces on the main thread. When `signal` aborts, the main thread is told and gives the call
   * up if it is not sent yet; the answer (the drop, or the broker's) still comes from there.
   */
  produce(
    binding: string,
    topic: string,
    partition: number | undefined,
    records: readonly ProduceRecord[],
    options: Omit<ProduceOptions, 'signal'> | undefined,
    signal?: AbortSignal,
  ): Promise<ProduceAnswer> {
    if (this.#closed) return Promise.reject(new Error('the main thread is not serving this worker'));
    if (signal?.aborted === true) return Promise.reject(reasonOf(signal));
    const id = this.#nextId++;
    const onAbort = (): void => {
      if (signal !== undefined)
        this.#send({ type: 'produce-abort', id, reason: encodeError(reasonOf(signal)) });
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    return new Promise<ProduceAnswer>((resolve, reject) => {
      this.#producing.set(id, { resolve, reject });
      this.#send({ type: 'produce', id, binding, topic, partition, records, options });
    }).finally(() => signal?.removeEventListener('abort', onAbort));
  }

  /** The broker's end offsets of partitions of an attached topic, asked on the main thread. */
  endOffsets(
    subscription: number,
    partitions: readonly number[],
    isolation: Isolation,
  ): Promise<ReadonlyMap<number, bigint>> {
    if (this.#closed) return Promise.reject(new Error('the main thread is not serving this worker'));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#offsets.set(id, { resolve, reject });
      this.#send({ type: 'offsets', id, subscription, partitions, isolation });
    });
  }

  /** Fails every call still waiting and stops listening. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const error = new Error('the main thread is not serving this worker');
    for (const pending of [
      ...this.#attaching.values(),
      ...this.#producing.values(),
      ...this.#offsets.values(),
    ])
      pending.reject(error);
    this.#attaching.clear();
    this.#producing.clear();
    this.#offsets.clear();
    this.#subscribers.clear();
    this.#port.close();
  }

  #receive(message: CacheReply): void {
    switch (message.type) {
      case 'attached': {
        const pending = this.#attaching.get(message.id);
        this.#attaching.delete(message.id);
        pending?.resolve(message.snapshot);
        break;
      }
      case 'produced': {
        const pending = this.#producing.get(message.id);
        this.#producing.delete(message.id);
        pending?.resolve(message.result);
        break;
      }
      case 'offsets': {
        const pending = this.#offsets.get(message.id);
        this.#offsets.delete(message.id);
        pending?.resolve(message.offsets);
        break;
      }
      case 'failed': {
        const error = decodeError(message.error);
        const pending =
          this.#attaching.get(message.id) ?? this.#producing.get(message.id) ?? this.#offsets.get(message.id);
        this.#attaching.delete(message.id);
        this.#producing.delete(message.id);
        this.#offsets.delete(message.id);
        pending?.reject(error);
        break;
      }
      case 'changes':
        this.#subscribers.get(message.id)?.(message);
        break;
    }
  }

  #send(request: CacheRequest): void {
    if (!this.#closed) this.#port.postMessage(request);
  }
}

function reasonOf(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new Error(`produce was given up: ${String(reason)}`);
}
