import type { Logger } from 'pino';
import { backoffDelay, sleep } from './backoff.ts';
import { isRetriable, KafkaClientError } from './errors.ts';
import { DEFAULTS, type KafkaClientOptions } from './options.ts';

export interface RetrySettings {
  readonly options: KafkaClientOptions;
  readonly log: Logger | undefined;
  /** Aborted when the client closes: no attempt is retried after that. */
  readonly closing: AbortSignal;
  /** Runs between attempts: a retriable error mostly means a leader moved or a broker left. */
  readonly refresh: () => Promise<void>;
}

function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

/** Retries of everything retriable, with capped, jittered backoff and a metadata refresh between attempts. */
export class Retrier {
  readonly #options: KafkaClientOptions;
  readonly #log: Logger | undefined;
  readonly #closing: AbortSignal;
  readonly #refresh: () => Promise<void>;

  constructor(settings: RetrySettings) {
    this.#options = settings.options;
    this.#log = settings.log;
    this.#closing = settings.closing;
    this.#refresh = settings.refresh;
  }

  async retry<T>(what: string, op: () => Promise<T>, signal?: AbortSignal, deadline = Infinity): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await op();
      } catch (error) {
        const stop = signal?.aborted === true || this.#closing.aborted || Date.now() >= deadline;
        if (!isRetriable(error) || stop) throw error;
        const delay = backoffDelay(attempt, {
          initialMs: this.#options.retryInitialMs ?? DEFAULTS.retryInitialMs,
          maxMs: this.#options.retryMaxMs ?? DEFAULTS.retryMaxMs,
        });
        this.#log?.debug({ what, attempt, delay: Math.round(delay), err: error }, 'retrying');
        await sleep(Math.min(delay, Math.max(0, deadline - Date.now())), signal);
        // The signal may have aborted during the sleep.
        if (isAborted(signal)) throw error;
        await this.#refresh();
      }
    }
  }

  /**
   * `retry` bounded by `signal`: the retries stop, and a request in flight is given up on (its
   * answer, if any, is dropped), so that the caller is not held for a request timeout.
   */
  async bounded<T>(what: string, op: () => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
    if (signal === undefined) return this.retry(what, op);
    const aborted = (): KafkaClientError =>
      new KafkaClientError(`${what}: aborted`, false, { cause: signal.reason });
    if (signal.aborted) throw aborted();
    let onAbort: (() => void) | undefined;
    const abort = new Promise<never>((_resolve, reject) => {
      onAbort = () => reject(aborted());
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([this.retry(what, op, signal), abort]);
    } catch (error) {
      throw signal.aborted ? aborted() : error;
    } finally {
      if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
    }
  }
}
