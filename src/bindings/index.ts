import { BindingRegistry } from '../engine/registry.ts';
import { createCacheClientBinding } from './kafka/cache_client/index.ts';
import { createKafkaClientBinding } from './kafka/client/index.ts';

/** Every binding kgate can run, keyed by (type, kind) as they appear in the config. */
export function defaultRegistry(): BindingRegistry {
  return new BindingRegistry()
    .register('kafka', 'client', createKafkaClientBinding)
    .register('kafka', 'cache_client', createCacheClientBinding);
}
