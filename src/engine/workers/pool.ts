import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { LoadedConfig } from '../../config/index.ts';
import type { Composition } from '../composition.ts';
import type { ControlReply, ControlRequest, WorkerInit } from './protocol.ts';
import type { BindingLookup, ServiceHost } from './service.ts';

export interface WorkerPoolOptions {
  readonly count: number;
  readonly config: LoadedConfig;
  readonly stateDir: string;
  readonly logger: Logger;
  readonly prettyLogs?: boolean;
  /** Where each worker imports its bindings from, and the services each worker gets a port of. */
  readonly composition: Composition;
  /** The main thread's running bindings, for the services' hosts. */
  readonly bindings: BindingLookup;
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

/** One worker thread and the main thread's side of its services' ports. */
class WorkerThread {
  readonly index: number;
  /** By service name. */
  readonly hosts: ReadonlyMap<string, ServiceHost>;
  readonly #worker: Worker;
  readonly #replies: Array<(reply: ControlReply | undefined) => void> = [];
  #expectExit = false;
  #exited = false;
  #onFatal: ((error: Error) => void) | undefined;
  /** A failure before watch(), reported when watching starts. */
  #failure: Error | undefined;

  constructor(index: number, options: WorkerPoolOptions) {
    this.index = index;
    const hosts = new Map<string, ServiceHost>();
    const ports: Record<string, MessagePort> = {};
    for (const service of options.composition.threadServices) {
      if (hosts.has(service.name)) throw new Error(`thread service ${service.name} is composed twice`);
      const channel = new MessageChannel();
      hosts.set(service.name, service.host(channel.port1, options.bindings));
      ports[service.name] = channel.port2;
    }
    this.hosts = hosts;
    const init: WorkerInit = {
      index,
      config: options.config,
      stateDir: options.stateDir,
      logLevel: options.logger.level,
      ...(options.prettyLogs === true ? { prettyLogs: true } : {}),
      composition: options.composition.module,
      ports,
    };
    this.#worker = new Worker(WORKER_URL, { workerData: init, transferList: Object.values(ports) });
    this.#worker.on('message', (reply: ControlReply) => this.#replies.shift()?.(reply));
    this.#worker.on('error', (error) =>
      this.#fail(new Error(`worker thread ${index} failed: ${error.message}`, { cause: error })),
    );
    this.#worker.on('exit', (code) => {
      this.#exited = true;
      for (const waiting of this.#replies.splice(0)) waiting(undefined);
      this.#closeHosts();
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
    this.#closeHosts();
  }

  #closeHosts(): void {
    for (const host of this.hosts.values()) host.close();
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
 * runs the same config on the same ports, the kernel spreading connections among the threads,
 * with the registry of the composition as its thread services adapt it: a binding only the main
 * thread may run (one that owns shared state or outside connections) is replaced on a worker by a
 * stand-in that reaches the main thread's over the service's port.
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

  /** The main thread's host of the named thread service, one per worker in worker order. */
  hosts(service: string): ServiceHost[] {
    return this.#threads.flatMap((t) => t.hosts.get(service) ?? []);
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
            this.#logger.error({ worker: t.index, err: error }, 'worker thread failed to stop'),
          ),
      ),
    );
  }
}
