import { Counter, Gauge, type Registry } from 'prom-client';
import { perRegistry } from '../../telemetry/per-registry.ts';

/**
 * What one `sse server` binding counts. The metrics are created once per registry and shared by
 * every sse server in it; the `binding` label tells them apart.
 */
export interface SseServerMetrics {
  /** A client's event stream opened; the returned function is called once when it ends. */
  clientConnected(): () => void;
  /** `events` events, `bytes` bytes of event-stream text, were handed to a client's socket. */
  sent(events: number, bytes: number): void;
  /** A client fell behind (more than the socket's high-water mark unsent) and its feed waits for it. */
  paused(): void;
  /** A client stayed behind past the stream's buffer bound and was cut. */
  dropped(): void;
}

interface Shared {
  readonly clients: Gauge<'binding'>;
  readonly events: Counter<'binding'>;
  readonly bytes: Counter<'binding'>;
  readonly slow: Counter<'binding' | 'action'>;
}

const shared = perRegistry((registers): Shared => {
  const created: Shared = {
    clients: new Gauge({
      name: 'kgate_sse_clients',
      help: 'Event streams open on sse server bindings',
      labelNames: ['binding'],
      registers,
    }),
    events: new Counter({
      name: 'kgate_sse_events_sent_total',
      help: 'Events sse server bindings handed to client sockets',
      labelNames: ['binding'],
      registers,
    }),
    bytes: new Counter({
      name: 'kgate_sse_sent_bytes_total',
      help: 'Bytes of event-stream text (events, comments, retry hints) sse server bindings handed to client sockets',
      labelNames: ['binding'],
      registers,
    }),
    slow: new Counter({
      name: 'kgate_sse_slow_clients_total',
      help: 'Times a client fell behind: paused (its feed waits until the socket drains) or dropped (cut at the buffer bound)',
      labelNames: ['binding', 'action'],
      registers,
    }),
  };
  return created;
});

export function sseServerMetrics(registry: Registry, binding: string): SseServerMetrics {
  const m = shared(registry);
  // Children bound once: the hot path increments without building label objects.
  const clients = m.clients.labels(binding);
  const events = m.events.labels(binding);
  const bytes = m.bytes.labels(binding);
  const paused = m.slow.labels(binding, 'paused');
  const dropped = m.slow.labels(binding, 'dropped');
  clients.inc(0);
  events.inc(0);
  bytes.inc(0);
  paused.inc(0);
  dropped.inc(0);
  return {
    clientConnected() {
      clients.inc();
      let open = true;
      return () => {
        if (!open) return;
        open = false;
        clients.dec();
      };
    },
    sent(n, size) {
      events.inc(n);
      bytes.inc(size);
    },
    paused: () => paused.inc(),
    dropped: () => dropped.inc(),
  };
}

/** Counts nothing: for streams made outside a binding. */
export const NO_SSE_METRICS: SseServerMetrics = {
  clientConnected: () => () => undefined,
  sent: () => undefined,
  paused: () => undefined,
  dropped: () => undefined,
};
