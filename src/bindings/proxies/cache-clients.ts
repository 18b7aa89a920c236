import type { BindingContext, Binding } from '../../engine/binding.ts';
import { exitNames } from '../north.ts';
import { errorCodeOf, type ErrorCode } from '../../engine/errors.ts';
import { isCacheClient, type CacheClientApi } from '../kafka/cache_client/index.ts';

/** A `kafka cache_client` exit of a proxy. */
export type CacheClient = Binding & CacheClientApi;

/** Every exit of the binding, checked to be a cache_client so that miswiring fails at start. */
export function lookupCacheClients(context: BindingContext): Map<string, CacheClient> {
  const out = new Map<string, CacheClient>();
  for (const name of exitNames(context)) {
    const binding = context.lookup(name);
    if (!isCacheClient(binding)) throw new Error(`exit ${name} is not a kafka cache_client`);
    out.set(name, binding);
  }
  return out;
}

/**
 * The code a failure to open, fetch from or produce to a topic is answered with: the first code
 * along its cause chain (broker codes were mapped where the Kafka client raised them), and for an
 * error that has none, KGATE_KAFKA_FAILED: whatever failed behind the proxy is the gateway's
 * problem, not the client's.
 */
export function kafkaErrorCode(error: unknown): ErrorCode {
  return errorCodeOf(error) ?? 'KGATE_KAFKA_FAILED';
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
