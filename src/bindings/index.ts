import type { BindingSchema } from '../config/json-schema.ts';
import type { BindingFactory } from '../engine/binding.ts';
import type { Composition } from '../engine/composition.ts';
import { BindingRegistry } from '../engine/registry.ts';
import { checkBindings } from './config-checks.ts';
import { echoServerSchema } from './echo/schema.ts';
import { createEchoServerBinding } from './echo/server.ts';
import { fanServerSchema } from './fan/schema.ts';
import { createFanServerBinding } from './fan/server.ts';
import { createFilesystemServerBinding } from './filesystem/server.ts';
import { filesystemServerSchema } from './filesystem/schema.ts';
import { createHttpFilesystemProxyBinding } from './http-filesystem/proxy.ts';
import { httpFilesystemProxySchema } from './http-filesystem/schema.ts';
import { createHttpKafkaProxyBinding } from './http-kafka/proxy.ts';
import { httpKafkaProxySchema } from './http-kafka/schema.ts';
import { httpClientSchema, httpServerSchema } from './http/schema.ts';
import { createHttpServerBinding } from './http/server.ts';
import { createCacheClientBinding } from './kafka/cache_client/index.ts';
import { cacheClientSchema } from './kafka/cache_client/schema.ts';
import { createCacheServerBinding } from './kafka/cache_server/index.ts';
import { cacheServerSchema } from './kafka/cache_server/schema.ts';
import { createKafkaClientBinding } from './kafka/client/index.ts';
import { kafkaClientSchema } from './kafka/client/schema.ts';
import { kafkaCacheThreads } from './kafka/threads/index.ts';
import { sseKafkaProxySchema } from './sse-kafka/schema.ts';
import { createSseKafkaProxyBinding } from './sse-kafka/proxy.ts';
import { sseServerSchema } from './sse/schema.ts';
import { createSseServerBinding } from './sse/server.ts';
import { createTcpClientBinding } from './tcp/client.ts';
import { tcpClientSchema, tcpServerSchema } from './tcp/schema.ts';
import { createTcpServerBinding } from './tcp/server.ts';
import { createTlsClientBinding } from './tls/client.ts';
import { tlsClientSchema, tlsServerSchema } from './tls/schema.ts';
import { createTlsServerBinding } from './tls/server.ts';

export interface BindingKind {
  readonly type: string;
  readonly kind: string;
  readonly schema: BindingSchema;
  /** Absent for a kind the schema accepts, so that Zilla files using it load, but kgate cannot run. */
  readonly create?: BindingFactory;
}

/**
 * Every binding kind kgate knows, keyed by (type, kind) as they appear in the config, in the order
 * the schema and the configuration reference list them.
 */
export const BINDING_KINDS: readonly BindingKind[] = [
  { type: 'kafka', kind: 'client', schema: kafkaClientSchema, create: createKafkaClientBinding },
  { type: 'kafka', kind: 'cache_server', schema: cacheServerSchema, create: createCacheServerBinding },
  { type: 'kafka', kind: 'cache_client', schema: cacheClientSchema, create: createCacheClientBinding },
  { type: 'tcp', kind: 'server', schema: tcpServerSchema, create: createTcpServerBinding },
  { type: 'tcp', kind: 'client', schema: tcpClientSchema, create: createTcpClientBinding },
  { type: 'tls', kind: 'server', schema: tlsServerSchema, create: createTlsServerBinding },
  { type: 'tls', kind: 'client', schema: tlsClientSchema, create: createTlsClientBinding },
  { type: 'http', kind: 'server', schema: httpServerSchema, create: createHttpServerBinding },
  { type: 'http', kind: 'client', schema: httpClientSchema },
  { type: 'sse', kind: 'server', schema: sseServerSchema, create: createSseServerBinding },
  { type: 'http-kafka', kind: 'proxy', schema: httpKafkaProxySchema, create: createHttpKafkaProxyBinding },
  { type: 'sse-kafka', kind: 'proxy', schema: sseKafkaProxySchema, create: createSseKafkaProxyBinding },
  {
    type: 'http-filesystem',
    kind: 'proxy',
    schema: httpFilesystemProxySchema,
    create: createHttpFilesystemProxyBinding,
  },
  {
    type: 'filesystem',
    kind: 'server',
    schema: filesystemServerSchema,
    create: createFilesystemServerBinding,
  },
  { type: 'echo', kind: 'server', schema: echoServerSchema, create: createEchoServerBinding },
  { type: 'fan', kind: 'server', schema: fanServerSchema, create: createFanServerBinding },
];

/** Every binding kgate can run. */
export function defaultRegistry(): BindingRegistry {
  const registry = new BindingRegistry();
  for (const { type, kind, create } of BINDING_KINDS)
    if (create !== undefined) registry.register(type, kind, create);
  return registry;
}

/**
 * What `kgate start` runs: every binding, and the thread service through which worker threads
 * read the main thread's kafka cache. Worker threads import this module to build their bindings.
 */
export const composition: Composition = {
  module: import.meta.url,
  registry: defaultRegistry,
  threadServices: [kafkaCacheThreads],
  checkBindings,
};
