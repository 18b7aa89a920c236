import type { Socket } from 'node:net';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { BindingConfig } from '../../config/index.ts';
import { perRegistry } from '../../telemetry/per-registry.ts';
import { TcpStreamMetrics } from './zilla-metrics.ts';

/**
 * Connection and byte counts of one `tcp server` binding. The metrics are created once per
 * registry and shared by every tcp server in it; the `binding` label tells them apart.
 *
 * Bytes are not counted per chunk: each scrape (and each connection's close) adds what the open
 * sockets' `bytesRead`/`bytesWritten` moved since the last look, so the hot path pays nothing.
 */
export interface TcpServerMetrics {
  /** A connection was accepted; it counts as open until its socket closes. */
  accepted(socket: Socket): void;
  /** A connection failed (reset, timeout, ...). */
  failed(): void;
  /** The binding stopped; its sockets are no longer looked at on scrape. */
  close(): void;
}

interface Seen {
  read: number;
  written: number;
}

interface Source {
  readonly binding: string;
  readonly sockets: Map<Socket, Seen>;
  /** The Zilla `stream.*` metrics the binding collects, if any. */
  readonly streams: TcpStreamMetrics | undefined;
}

interface Shared {
  readonly open: Gauge<'binding'>;
  readonly accepted: Counter<'binding'>;
  readonly errors: Counter<'binding'>;
  readonly received: Counter<'binding'>;
  readonly sent: Counter<'binding'>;
  readonly sources: Set<Source>;
}

function countBytes(shared: Shared, source: Source, socket: Socket, seen: Seen): void {
  const read = socket.bytesRead;
  const written = socket.bytesWritten;
  if (read > seen.read) shared.received.inc({ binding: source.binding }, read - seen.read);
  if (written > seen.written) shared.sent.inc({ binding: source.binding }, written - seen.written);
  source.streams?.bytes(Math.max(read - seen.read, 0), Math.max(written - seen.written, 0));
  seen.read = read;
  seen.written = written;
}

const shared = perRegistry((registers): Shared => {
  const sources = new Set<Source>();
  let created: Shared | undefined = undefined;
  // Both byte counters bring every open socket up to date, whichever is collected first.
  const collect = (): void => {
    if (created === undefined) return;
    for (const source of sources) countSockets(created, source);
  };
  created = {
    sources,
    open: new Gauge({
      name: 'kgate_tcp_server_connections',
      help: 'Connections open on tcp server bindings',
      labelNames: ['binding'],
      registers,
    }),
    accepted: new Counter({
      name: 'kgate_tcp_server_connections_accepted_total',
      help: 'Connections accepted by tcp server bindings',
      labelNames: ['binding'],
      registers,
    }),
    errors: new Counter({
      name: 'kgate_tcp_server_connection_errors_total',
      help: 'Connections of tcp server bindings that ended with a socket error',
      labelNames: ['binding'],
      registers,
    }),
    received: new Counter({
      name: 'kgate_tcp_server_received_bytes_total',
      help: 'Bytes read from clients by tcp server bindings',
      labelNames: ['binding'],
      registers,
      collect,
    }),
    sent: new Counter({
      name: 'kgate_tcp_server_sent_bytes_total',
      help: 'Bytes written to clients by tcp server bindings',
      labelNames: ['binding'],
      registers,
      collect,
    }),
  };
  return created;
});

function countSockets(shared: Shared, source: Source): void {
  for (const [socket, seen] of source.sockets) countBytes(shared, source, socket, seen);
}

export function createTcpServerMetrics(registry: Registry, config: BindingConfig): TcpServerMetrics {
  const binding = config.name;
  const metrics = shared(registry);
  const streams = TcpStreamMetrics.of(registry, config);
  const source: Source = { binding, sockets: new Map(), streams };
  metrics.sources.add(source);
  if (streams !== undefined) streams.series.refresh = () => countSockets(metrics, source);
  const labels = { binding };
  // A label shows from the start, at zero, rather than appearing with the first connection.
  metrics.open.inc(labels, 0);
  metrics.accepted.inc(labels, 0);
  metrics.errors.inc(labels, 0);
  metrics.received.inc(labels, 0);
  metrics.sent.inc(labels, 0);
  return {
    accepted(socket: Socket): void {
      const seen: Seen = { read: 0, written: 0 };
      source.sockets.set(socket, seen);
      metrics.accepted.inc(labels);
      metrics.open.inc(labels);
      streams?.opened();
      socket.once('close', (hadError: boolean) => {
        countBytes(metrics, source, socket, seen);
        source.sockets.delete(socket);
        metrics.open.dec(labels);
        streams?.closed(hadError);
      });
    },
    failed(): void {
      metrics.errors.inc(labels);
    },
    close(): void {
      metrics.sources.delete(source);
    },
  };
}
