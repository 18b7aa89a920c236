import { defaultRegistry } from '../../bindings/index.ts';
import { RemoteCacheServerBinding } from '../../bindings/kafka/threads/remote-cache-server.ts';
import type { Binding, BindingFactory } from '../binding.ts';
import { BindingRegistry } from '../registry.ts';
import type { CacheRpcClient } from '../../bindings/kafka/threads/cache-rpc.ts';

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

/**
 * The registry of a worker thread: north-side bindings and cache_clients as usual, cache_servers
 * as readers of the main thread's cache, and the Kafka-facing client bindings as placeholders.
 */
export function workerRegistry(rpc: CacheRpcClient): BindingRegistry {
  const all = defaultRegistry();
  const registry = new BindingRegistry();
  const placeholder: BindingFactory = (context) => new MainThreadBinding(context.config.name);
  const remote: BindingFactory = (context) => new RemoteCacheServerBinding(context, rpc);
  for (const [type, kinds] of all.entries()) {
    for (const kind of kinds) {
      const factory = all.get(type, kind);
      if (factory === undefined) continue;
      if (type === 'kafka' && kind === 'cache_server') registry.register(type, kind, remote);
      else if (MAIN_THREAD_ONLY.has(`${type} ${kind}`)) registry.register(type, kind, placeholder);
      else registry.register(type, kind, factory);
    }
  }
  return registry;
}
