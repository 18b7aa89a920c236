import { Counter, type Registry } from 'prom-client';
import { perRegistry } from '../../telemetry/per-registry.ts';
import type { Replaced } from './content-types.ts';

/**
 * What one `http-kafka proxy` binding counts. The metrics are created once per registry and
 * shared by every http-kafka proxy in it; the `binding` label tells them apart.
 */
export interface HttpKafkaMetrics {
  /** A stored content type was answered as `application/octet-stream` instead. */
  contentTypeReplaced(reason: Replaced): void;
  /** A reply could not be passed on (its `:status` is not a final status) and was answered 502. */
  invalidReply(): void;
}

interface Shared {
  readonly replaced: Counter<'binding' | 'reason'>;
  readonly invalidReplies: Counter<'binding'>;
}

const shared = perRegistry((registers): Shared => ({
  replaced: new Counter({
    name: 'kgate_http_kafka_content_types_replaced_total',
    help: 'Stored content types http-kafka proxy bindings answered as application/octet-stream: malformed (invalid) or not on the route list (not_allowed)',
    labelNames: ['binding', 'reason'],
    registers,
  }),
  invalidReplies: new Counter({
    name: 'kgate_http_kafka_invalid_replies_total',
    help: 'Replies http-kafka proxy bindings answered 502 because their :status was not a final HTTP status',
    labelNames: ['binding'],
    registers,
  }),
}));

export function httpKafkaMetrics(registry: Registry, binding: string): HttpKafkaMetrics {
  const m = shared(registry);
  const replaced = {
    invalid: m.replaced.labels(binding, 'invalid'),
    not_allowed: m.replaced.labels(binding, 'not_allowed'),
  };
  const invalidReplies = m.invalidReplies.labels(binding);
  replaced.invalid.inc(0);
  replaced.not_allowed.inc(0);
  invalidReplies.inc(0);
  return {
    contentTypeReplaced: (reason) => replaced[reason].inc(),
    invalidReply: () => invalidReplies.inc(),
  };
}
