import type { BindingContext, Binding } from '../../engine/binding.ts';
import { exitNames } from '../north.ts';
import { KafkaClientError, KafkaProtocolError } from '../kafka/client/index.ts';
import { isCacheClient, MessageTooLargeError, type CacheClientApi } from '../kafka/cache_client/index.ts';

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

// Broker error codes whose meaning a client can act on; anything else is the gateway's problem.
const STATUS_BY_CODE = new Map<number, number>([
  [2, 400], // CORRUPT_MESSAGE
  [3, 404], // UNKNOWN_TOPIC_OR_PARTITION
  [10, 413], // MESSAGE_TOO_LARGE
  [17, 400], // INVALID_TOPIC_EXCEPTION
  [18, 413], // RECORD_LIST_TOO_LARGE
  [29, 403], // TOPIC_AUTHORIZATION_FAILED
  [31, 403], // CLUSTER_AUTHORIZATION_FAILED
  [53, 403], // TRANSACTIONAL_ID_AUTHORIZATION_FAILED
  [87, 400], // INVALID_RECORD
  [100, 404], // UNKNOWN_TOPIC_ID
]);

function causes(error: unknown): unknown[] {
  const out: unknown[] = [];
  let at: unknown = error;
  while (at !== undefined && at !== null && out.length < 8) {
    out.push(at);
    at = at instanceof Error ? at.cause : undefined;
  }
  return out;
}

/** The HTTP status for a failure to open, fetch from or produce to a topic. */
export function kafkaErrorStatus(error: unknown): number {
  for (const e of causes(error)) {
    if (e instanceof MessageTooLargeError) return 413;
    if (e instanceof KafkaProtocolError) {
      const status = STATUS_BY_CODE.get(e.code);
      if (status !== undefined) return status;
    }
  }
  const message = error instanceof Error ? error.message : String(error);
  if (/unknown topic|does not exist|UNKNOWN_TOPIC/i.test(message)) return 404;
  if (/not authori[sz]ed|AUTHORIZATION_FAILED/i.test(message)) return 403;
  return causes(error).some((e) => e instanceof KafkaClientError && e.retriable) ? 503 : 502;
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
