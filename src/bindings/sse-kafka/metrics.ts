import { Counter, Gauge, type Registry } from 'prom-client';
import { perRegistry } from '../../telemetry/per-registry.ts';

/**
 * What one `sse-kafka proxy` binding counts. The metrics are created once per registry and shared
 * by every sse-kafka proxy in it; the `binding` label tells them apart.
 */
export interface SseKafkaMetrics {
  /** An event stream began reading a cache_client stream; the returned function ends it, once. */
  streamOpened(): () => void;
  /** `count` messages were handed to event streams. */
  delivered(count: number): void;
  /** A stream stopped pulling from the cache until its client caught up. */
  paused(): void;
}

interface Shared {
  readonly streams: Gauge<'binding'>;
  readonly events: Counter<'binding'>;
  readonly paused: Counter<'binding'>;
}

const shared = perRegistry((registers): Shared => {
  const created: Shared = {
    streams: new Gauge({
      name: 'kgate_sse_kafka_streams',
      help: 'Event streams sse-kafka proxy bindings are serving from cache_client streams',
      labelNames: ['binding'],
      registers,
    }),
    events: new Counter({
      name: 'kgate_sse_kafka_events_total',
      help: 'Kafka messages sse-kafka proxy bindings handed to event streams',
      labelNames: ['binding'],
      registers,
    }),
    paused: new Counter({
      name: 'kgate_sse_kafka_paused_total',
      help: 'Times an sse-kafka stream stopped pulling from the cache until its client caught up',
      labelNames: ['binding'],
      registers,
    }),
  };
  return created;
});

export function sseKafkaMetrics(registry: Registry, binding: string): SseKafkaMetrics {
  const m = shared(registry);
  const streams = m.streams.labels(binding);
  const events = m.events.labels(binding);
  const paused = m.paused.labels(binding);
  streams.inc(0);
  events.inc(0);
  paused.inc(0);
  return {
    streamOpened() {
      streams.inc();
      let open = true;
      return () => {
        if (!open) return;
        open = false;
        streams.dec();
      };
    },
    delivered: (count) => events.inc(count),
    paused: () => paused.inc(),
  };
}
