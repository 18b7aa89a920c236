// Messages between the main thread and its worker threads on each worker's parent port. They
// cross a MessagePort, so they are structured-cloneable data.
import type { MessagePort } from 'node:worker_threads';
import type { LoadedConfig } from '../../config/index.ts';

/** Handed to a worker thread at creation. */
export interface WorkerInit {
  /** 1-based; names the thread in logs. */
  readonly index: number;
  readonly config: LoadedConfig;
  readonly stateDir: string;
  readonly logLevel: string;
  readonly prettyLogs?: boolean;
  /** URL of the module whose `composition` export the worker builds its registry from. */
  readonly composition: string;
  /** The worker's end of each thread service's port, by service name (transferred). */
  readonly ports: Readonly<Record<string, MessagePort>>;
}

/** Main to worker, on the worker's parent port. */
export type ControlRequest =
  | { readonly type: 'reload'; readonly config: LoadedConfig }
  | { readonly type: 'stop'; readonly drainMs: number };

/** Worker to main, on the worker's parent port. */
export type ControlReply =
  | { readonly type: 'started' }
  | { readonly type: 'start-failed'; readonly message: string }
  | { readonly type: 'reloaded'; readonly error?: string }
  | { readonly type: 'stopped' };
