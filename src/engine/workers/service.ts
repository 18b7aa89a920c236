import type { MessagePort } from 'node:worker_threads';
import type { Binding, BindingFactory } from '../binding.ts';

/** The main thread's running binding of that name, if any. */
export type BindingLookup = (name: string) => Binding | undefined;

/** The main thread's end of a thread service, serving one worker. */
export interface ServiceHost {
  /** The worker exited or was stopped: gives back what was held for it and closes the port. */
  close(): void;
}

/** A worker thread's end of a thread service. */
export interface ServiceClient {
  /**
   * The factory this thread builds bindings of (type, kind) with: `factory` itself, a wrapper, or
   * a stand-in for a binding that only the main thread runs.
   */
  factory(type: string, kind: string, factory: BindingFactory): BindingFactory;
  /** The worker's bindings stopped, or failed to start: fails what still waits and closes the port. */
  close(): void;
}

/**
 * Something bindings share between the main thread and each worker thread over a port of its own,
 * contributed by whoever composes the registry. The worker pool opens one channel per service per
 * worker and hands one end to `host` on the main thread and the other to `client` on the worker;
 * what travels on it is the service's business, not the engine's.
 */
export interface ThreadService {
  /** Names the service's port; unique among the services of one composition. */
  readonly name: string;
  /** Main thread, once per worker. */
  host(port: MessagePort, bindings: BindingLookup): ServiceHost;
  /** Worker thread, before its registry is used. */
  client(port: MessagePort): ServiceClient;
}
