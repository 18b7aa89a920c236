import { MessageChannel, Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { CacheServerApi } from '../../bindings/kafka/cache_server/api.ts';
import type { LoadedConfig } from '../../config/index.ts';
import { messageOf } from '../engine.ts';
import { CacheHost } from '../../bindings/kafka/threads/cache-host.ts';
import type { ControlReply, ControlRequest, WorkerInit } from './protocol.ts';

export interface WorkerPoolOptions {
  readonly count: number;
  readonly config: LoadedConfig;
  readonly stateDir: string;
  readonly logger: Logger;
  readonly prettyLogs?: boolean;
  readonly startTimeoutMs?: number;
  /** The main thread's running cache_server of that name. */
  readonly cacheServer: (name: string) => CacheServerApi | undefined;
  /**
   * A worker failed or exited on its own. Its listeners are gone and its streams with them, and
   * the process cannot vouch for its state: the caller is expected to exit.
   */
  readonly onFatal: (error: Error) => void;
}

// Under type stripping this module is src/**/*.ts; built, it is dist/**/*.js beside worker.js.
const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url);

/** How long a worker may take past the drain budget to answer a stop before it is terminated. */
const STOP_GRACE_MS = 2_000;

/** One worker thread and the main thread's side of its cache port. */
class WorkerThread {
  readonly index: number;
  readonly host: CacheHost;
  readonly #worker: Worker;
  readonly #replies: Array<(reply: ControlReply | undefined) => void> = [];
  #expectExit = false;
  #exited = false;
  #onFatal: ((error: Error) => void) | undefined;
  /** A failure before watch(), reported when watching starts. */
  #failure: Error | undefined;

  constructor(index: number, options: WorkerPoolOptions) {
    this.index = index;
    const channel = new MessageChannel();
    this.host = new CacheHost(channel.port1, options.cacheServer);
    const init: WorkerInit = {
      index,
      config: options.config,
      stateDir: options.stateDir,
      logLevel: options.logger.level,
      ...(options.prettyLogs === true ? { prettyLogs: true } : {}),
      ...(options.startTimeoutMs === undefined ? {} : { startTimeoutMs: options.startTimeoutMs }),
      cachePort: channel.port2,
    };
    this.#worker = new Worker(WORKER_URL, { workerData: init, transferList: [channel.port2] });
    this.#worker.on('message', (reply: ControlReply) => this.#replies.shift()?.(reply));
    this.#worker.on('error', (error) =>
      this.#fail(new Error(`worker thread ${index} failed: ${error.message}`, { cause: error })),
    );
    this.#worker.on('exit', (code) => {
      this.#exited = true;
      for (const waiting of this.#replies.splice(0)) waiting(undefined);
      this.host.close();
      if (!this.#expectExit)
        this.#fail(new Error(`worker thread ${index} exited unexpectedly with code ${code}`));
    });
  }

  /** Resolves with the worker's next control reply; undefined if it exits first. */
  nextReply(): Promise<ControlReply | undefined> {
    if (this.#exited) return Promise.resolve(undefined);
    return new Promise((resolve) => this.#replies.push(resolve));
  }

  send(request: ControlRequest): Promise<ControlReply | undefined> {
    const reply = this.nextReply();
    if (!this.#exited) this.#worker.postMessage(request);
    return reply;
  }

  /** From now on an unexpected failure or exit is fatal. */
  watch(onFatal: (error: Error) => void): void {
    this.#onFatal = onFatal;
    if (this.#failure !== undefined) onFatal(this.#failure);
  }

  async stop(drainMs: number): Promise<void> {
    this.#expectExit = true;
    if (!this.#exited) {
      const timeout = new Promise<undefined>((resolve) =>
        setTimeout(() => resolve(undefined), drainMs + STOP_GRACE_MS).unref(),
      );
      await Promise.race([this.send({ type: 'stop', drainMs }), timeout]);
    }
    await this.#worker.terminate();
    this.host.close();
  }

  #fail(error: Error): void {
    if (this.#expectExit) return;
    this.#expectExit = true;
    this.#failure = error;
    this.#onFatal?.(error);
  }
}

/**
 * Worker threads that serve consumers alongside the main thread (`kgate start --workers N`). Each
 * runs the config's north-side bindings and cache_clients on the same ports, the kernel spreading
 * connections among the threads; the cache_servers and Kafka clients run on the main thread only.
 */
export class WorkerPool {
  readonly #threads: WorkerThread[];
  readonly #logger: Logger;

  private constructor(threads: WorkerThread[], logger: Logger) {
    this.#threads = threads;
    this.#logger = logger;
  }

  /** Starts the workers once the main thread's bindings run; rejects (with none left running) if one fails. */
  static async start(options: WorkerPoolOptions): Promise<WorkerPool> {
    const threads: WorkerThread[] = [];
    for (let index = 1; index <= options.count; index++) threads.push(new WorkerThread(index, options));
    const replies = await Promise.all(threads.map((t) => t.nextReply()));
    const failed = replies.findIndex((r) => r?.type !== 'started');
    if (failed >= 0) {
      await Promise.all(threads.map((t) => t.stop(1_000)));
      const reply = replies[failed];
      const reason = reply?.type === 'start-failed' ? reply.message : 'it exited';
      throw new Error(`worker thread ${failed + 1} failed to start: ${reason}`);
    }
    for (const thread of threads) thread.watch(options.onFatal);
    options.logger.info({ workers: threads.length }, 'worker threads started');
    return new WorkerPool(threads, options.logger);
  }

  get size(): number {
    return this.#threads.length;
  }

  /** Attachments each worker holds on the main thread's cache_servers, by worker. */
  attachments(): number[] {
    return this.#threads.map((t) => t.host.attachments);
  }

  /** Produce calls each worker has made through the main thread, by worker. */
  produceRequests(): number[] {
    return this.#threads.map((t) => t.host.produceRequests);
  }

  /**
   * Applies a config the main thread has just applied: each worker reloads its own bindings the
   * same way (see Engine.reload). Resolves with the errors of workers that kept their old config.
   */
  async reload(config: LoadedConfig): Promise<string[]> {
    const replies = await Promise.all(this.#threads.map((t) => t.send({ type: 'reload', config })));
    const errors: string[] = [];
    replies.forEach((reply, i) => {
      if (reply?.type === 'reloaded' && reply.error === undefined) return;
      const error = reply?.type === 'reloaded' ? (reply.error ?? '') : 'no answer';
      errors.push(`worker thread ${i + 1}: ${error}`);
      this.#logger.error({ worker: i + 1, err: error }, 'worker thread kept its previous config');
    });
    return errors;
  }

  /** Drains every worker's bindings (listeners first), then ends the threads. */
  async stop(drainMs: number): Promise<void> {
    await Promise.all(
      this.#threads.map((t) =>
        t
          .stop(drainMs)
          .catch((error: unknown) =>
            this.#logger.error({ worker: t.index, err: messageOf(error) }, 'worker thread failed to stop'),
          ),
      ),
    );
  }
}
