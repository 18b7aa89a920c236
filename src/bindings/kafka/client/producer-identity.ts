import type { ProducerIdentity } from './produce-batch.ts';

/** The largest epoch (an int16); past it an idempotent producer needs a new producer id. */
const MAX_EPOCH = 0x7fff;

/**
 * The idempotent producer id and epoch the client produces with. The id comes from the brokers
 * (InitProducerId), once, shared by every caller waiting for it; the epoch is bumped here, without
 * asking anyone, as Kafka's idempotent producer does (KIP-360): a broker takes sequence 0 under a
 * higher epoch as a fresh start of that producer's sequences on a partition.
 */
export class ProducerIdentities {
  readonly #init: () => Promise<ProducerIdentity>;
  #current: ProducerIdentity | undefined;
  #pending: Promise<ProducerIdentity> | undefined;

  constructor(init: () => Promise<ProducerIdentity>) {
    this.#init = init;
  }

  /** The identity new batches get; undefined until one was obtained, and after a reset. */
  get current(): ProducerIdentity | undefined {
    return this.#current;
  }

  /** The current identity, asking the brokers for one if there is none. */
  ensure(): Promise<ProducerIdentity> {
    if (this.#current !== undefined) return Promise.resolve(this.#current);
    if (this.#pending === undefined) {
      const pending = this.#init().then(
        (identity) => {
          if (this.#pending === pending) {
            this.#current = identity;
            this.#pending = undefined;
          }
          return identity;
        },
        (error: unknown) => {
          if (this.#pending === pending) this.#pending = undefined;
          throw error;
        },
      );
      this.#pending = pending;
    }
    return this.#pending;
  }

  /** The next epoch of the current id; undefined (and the id dropped) when the epochs are used up. */
  bumpEpoch(): ProducerIdentity | undefined {
    const current = this.#current;
    if (current === undefined || current.epoch >= MAX_EPOCH) {
      this.reset();
      return undefined;
    }
    this.#current = { producerId: current.producerId, epoch: current.epoch + 1 };
    return this.#current;
  }

  /** Drops the current id: the next `ensure` asks the brokers for a new one. */
  reset(): void {
    this.#current = undefined;
    this.#pending = undefined;
  }
}
