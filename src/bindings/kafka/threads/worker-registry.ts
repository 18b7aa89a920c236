import type { Binding, BindingFactory } from '../../../engine/binding.ts';
import type { CacheRpcClient } from './cache-rpc.ts';
import { RemoteCacheServerBinding } from './remote-cache-server.ts';

/** Bindings that talk to Kafka: the main thread runs them, a worker thread only keeps their place. */
const MAIN_THREAD_ONLY = new Set(['kafka client', 'tcp client', 'tls client']);

/** Stands in for a binding that runs on the main thread, so that the worker's graph stays whole. */
class MainThreadBinding implements Binding {
  readonly name: string;
  constructor(name: string) {
    this.name = name;
  }
  start(): Promise<void> {
    return Promise.resolve();
  }
  stop(): Promise<void> {
    return Promise.resolve();
  }
}

const placeholder: BindingFactory = (context) => new MainThreadBinding(context.config.name);

/**
 * How a worker thread builds (type, kind): north-side bindings and cache_clients as usual,
 * cache_servers as readers of the main thread's cache, and the Kafka-facing client bindings as
 * placeholders.
 */
export function workerFactory(
  type: string,
  kind: string,
  factory: BindingFactory,
  rpc: CacheRpcClient,
): BindingFactory {
  if (type === 'kafka' && kind === 'cache_server')
    return (context) => new RemoteCacheServerBinding(context, rpc);
  if (MAIN_THREAD_ONLY.has(`${type} ${kind}`)) return placeholder;
  return factory;
}
