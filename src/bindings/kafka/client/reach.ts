import type { Logger } from 'pino';
import { backoffDelay, sleep } from './backoff.ts';
import { ConnectionError, isRetriable, messageOf } from './errors.ts';

/** What a Reach tries: one attempt at a broker, and where the attempts go, for messages. */
export interface ReachTarget {
  connect(): Promise<void>;
  readonly bootstrapServers: string;
}

// Brokers that refuse or do not answer are tried again within a couple of seconds, so that kgate
// is ready soon after the last of them is up. A broker that refuses kgate's credentials or
// certificate is tried less often: only a change on its side helps, and each try is a login.
const RETRY = { initialMs: 100, maxMs: 2_000 };
const RETRY_TERMINAL = { initialMs: 1_000, maxMs: 30_000 };

/**
 * Tries to reach a cluster from the start of its client binding until a broker answers, with
 * capped, jittered backoff, for as long as the binding runs: whatever order the orchestrator
 * starts things in, kgate serves once Kafka is up. Logs the first failure, a change of reason
 * once, and the success once; waiting for it (`until`) is up to whoever needs it.
 */
export class Reach {
  readonly #target: ReachTarget;
  readonly #log: Logger | undefined;
  /** Every failed attempt, for the broker-connection-failed event. */
  readonly #onFailure: (error: unknown) => void;
  readonly #stopping: AbortSignal;
  #done = false;
  #failure: unknown;
  readonly #waiters = new Set<() => void>();

  constructor(
    target: ReachTarget,
    log: Logger | undefined,
    stopping: AbortSignal,
    onFailure: (error: unknown) => void = () => undefined,
  ) {
    this.#target = target;
    this.#log = log;
    this.#onFailure = onFailure;
    this.#stopping = stopping;
    void this.#run(stopping);
  }

  /** Some broker has answered. */
  get reached(): boolean {
    return this.#done;
  }

  /**
   * Resolves once a broker answered. Rejects at once while the last attempt met a failure no
   * retry fixes (authentication, TLS), and when `signal` aborts, with the last reason.
   */
  async until(signal: AbortSignal): Promise<void> {
    for (;;) {
      if (this.#done) return;
      if (this.#failure !== undefined && !isRetriable(this.#failure)) throw this.#failure;
      if (signal.aborted || this.#stopping.aborted) throw this.#notReached();
      // Woken by the next attempt's outcome or by the signal, whichever comes first.
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          this.#waiters.delete(wake);
          signal.removeEventListener('abort', wake);
          resolve();
        };
        this.#waiters.add(wake);
        signal.addEventListener('abort', wake, { once: true });
      });
    }
  }

  #notReached(): Error {
    const why = this.#failure === undefined ? 'no broker answered yet' : messageOf(this.#failure);
    return new ConnectionError(`Kafka not reachable at ${this.#target.bootstrapServers}: ${why}`, {
      ...(this.#failure === undefined ? {} : { cause: this.#failure }),
    });
  }

  #wake(): void {
    for (const wake of [...this.#waiters]) wake();
  }

  async #run(stopping: AbortSignal): Promise<void> {
    let lastReason: string | undefined;
    for (let attempt = 0; !stopping.aborted; attempt++) {
      try {
        await this.#target.connect();
        this.#done = true;
        this.#failure = undefined;
        if (attempt > 0) this.#log?.info({ attempts: attempt + 1 }, 'Kafka reachable');
        this.#wake();
        return;
      } catch (error) {
        if (stopping.aborted) break;
        this.#failure = error;
        this.#onFailure(error);
        this.#wake();
        const terminal = !isRetriable(error);
        const reason = messageOf(error);
        if (terminal) {
          if (reason !== lastReason)
            this.#log?.error({ err: error }, 'Kafka refuses kgate; retrying until that changes');
        } else if (attempt === 0) this.#log?.warn({ err: error }, 'Kafka not reachable yet, retrying');
        lastReason = reason;
        await sleep(backoffDelay(attempt, terminal ? RETRY_TERMINAL : RETRY), stopping);
      }
    }
    this.#wake();
  }
}

/**
 * The broker address a connection error names (Node's socket errors carry `address` and `port`,
 * possibly as the cause of kgate's own error); otherwise the first bootstrap server.
 */
export function failedAddress(error: unknown, bootstrapServers: string): { host: string; port: number } {
  for (let at: unknown = error, depth = 0; typeof at === 'object' && at !== null && depth < 8; depth++) {
    const address = 'address' in at ? at.address : undefined;
    const port = 'port' in at ? at.port : undefined;
    if (typeof address === 'string' && typeof port === 'number') return { host: address, port };
    at = 'cause' in at ? at.cause : undefined;
  }
  const first = bootstrapServers.split(',')[0]?.trim() ?? '';
  const colon = first.lastIndexOf(':');
  const port = Number(first.slice(colon + 1));
  return colon < 0 || !Number.isInteger(port)
    ? { host: first, port: 0 }
    : { host: first.slice(0, colon).replace(/^\[|\]$/g, ''), port };
}
