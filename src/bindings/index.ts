import type { Composition } from '../engine/composition.ts';
import { BindingRegistry } from '../engine/registry.ts';
import { createCacheClientBinding } from './kafka/cache_client/index.ts';
import { createCacheServerBinding } from './kafka/cache_server/index.ts';
import { createKafkaClientBinding } from './kafka/client/index.ts';
import { kafkaCacheThreads } from './kafka/threads/index.ts';
import { createFilesystemServerBinding } from './filesystem/server.ts';
import { createHttpServerBinding } from './http/server.ts';
import { createHttpFilesystemProxyBinding } from './http-filesystem/proxy.ts';
import { createHttpKafkaProxyBinding } from './http-kafka/proxy.ts';
import { createSseServerBinding } from './sse/server.ts';
import { createSseKafkaProxyBinding } from './sse-kafka/proxy.ts';
import { createTcpClientBinding } from './tcp/client.ts';
import { createTcpServerBinding } from './tcp/server.ts';
import { createTlsClientBinding } from './tls/client.ts';
import { createTlsServerBinding } from './tls/server.ts';

/** Every binding kgate can run, keyed by (type, kind) as they appear in the config. */
export function defaultRegistry(): BindingRegistry {
  return new BindingRegistry()
    .register('kafka', 'client', createKafkaClientBinding)
    .register('kafka', 'cache_server', createCacheServerBinding)
    .register('kafka', 'cache_client', createCacheClientBinding)
    .register('tcp', 'server', createTcpServerBinding)
    .register('tcp', 'client', createTcpClientBinding)
    .register('tls', 'server', createTlsServerBinding)
    .register('tls', 'client', createTlsClientBinding)
    .register('http', 'server', createHttpServerBinding)
    .register('sse', 'server', createSseServerBinding)
    .register('http-kafka', 'proxy', createHttpKafkaProxyBinding)
    .register('sse-kafka', 'proxy', createSseKafkaProxyBinding)
    .register('http-filesystem', 'proxy', createHttpFilesystemProxyBinding)
    .register('filesystem', 'server', createFilesystemServerBinding);
}

/**
 * What `kgate start` runs: every binding, and the thread service through which worker threads
 * read the main thread's kafka cache. Worker threads import this module to build their bindings.
 */
export const composition: Composition = {
  module: import.meta.url,
  registry: defaultRegistry,
  threadServices: [kafkaCacheThreads],
};
