// The kafka chain under worker threads: one writer of the cache and one set of broker connections
// on the main thread, readers of the same cache on every worker. This thread service is what the
// composition root contributes for it; the engine only opens its ports.
import type { BindingLookup, ThreadService } from '../../../engine/workers/service.ts';
import type { CacheServerApi } from '../cache_server/api.ts';
import { CacheHost } from './cache-host.ts';
import { CacheRpcClient } from './cache-rpc.ts';
import { workerFactory } from './worker-registry.ts';

function isCacheServer(binding: unknown): binding is CacheServerApi {
  const candidate = binding as Partial<CacheServerApi> | undefined;
  return typeof candidate?.attach === 'function' && typeof candidate.produce === 'function';
}

/** The main thread's running cache_server of that name. */
function cacheServers(bindings: BindingLookup): (name: string) => CacheServerApi | undefined {
  return (name) => {
    const binding = bindings(name);
    return isCacheServer(binding) ? binding : undefined;
  };
}

/**
 * Each worker's cache port: on the main thread a CacheHost attaching and producing through the
 * real cache_servers; on the worker a CacheRpcClient behind the cache_server stand-ins.
 */
export const kafkaCacheThreads: ThreadService = {
  name: 'kafka-cache',
  host: (port, bindings) => new CacheHost(port, cacheServers(bindings)),
  client(port) {
    const rpc = new CacheRpcClient(port);
    return {
      factory: (type, kind, factory) => workerFactory(type, kind, factory, rpc),
      close: () => rpc.close(),
    };
  },
};
