import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { perRegistry } from '../../telemetry/per-registry.ts';
import type { HttpVersion } from './versions.ts';

/**
 * Request and connection counts of one `http server` binding. The metrics are created once per
 * registry and shared by every http server in it; the `binding` label tells them apart.
 */
export interface HttpServerMetrics {
  /** A connection started speaking `version`; `closed` is called once it is gone. */
  connectionOpened(version: HttpVersion): () => void;
  /** A request was answered (or abandoned, `status` undefined) after `seconds`. */
  requestDone(method: string, status: number | undefined, seconds: number): void;
  /**
   * The server itself, or the handler behind it, refused a request with `status`; `reason`
   * tells it apart from others with the same status.
   */
  rejected(status: number, reason?: string): void;
}

/** Methods get a label of their own; anything else counts as `other`, so clients cannot add series. */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** Why a request was refused, by status. Statuses not listed are not refusals (5xx are failures). */
const REJECTIONS: Readonly<Record<number, string>> = {
  400: 'malformed',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  406: 'not_acceptable',
  408: 'headers_timeout',
  413: 'body_too_large',
  431: 'headers_too_large',
  505: 'version_not_supported',
};

interface Shared {
  readonly connections: Gauge<'binding' | 'version'>;
  readonly requests: Counter<'binding' | 'method' | 'status'>;
  readonly duration: Histogram<'binding' | 'method'>;
  readonly rejected: Counter<'binding' | 'reason'>;
}

const shared = perRegistry((registers): Shared => {
  const created: Shared = {
    connections: new Gauge({
      name: 'kgate_http_server_connections',
      help: 'Connections open on http server bindings, by HTTP version',
      labelNames: ['binding', 'version'],
      registers,
    }),
    requests: new Counter({
      name: 'kgate_http_server_requests_total',
      help: 'Requests answered by http server bindings, by method and status class (aborted: no response went out)',
      labelNames: ['binding', 'method', 'status'],
      registers,
    }),
    duration: new Histogram({
      name: 'kgate_http_server_request_duration_seconds',
      help: 'Time from a request arriving to its response completing; for event streams, the stream life',
      labelNames: ['binding', 'method'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    }),
    rejected: new Counter({
      name: 'kgate_http_server_requests_rejected_total',
      help: 'Requests http server bindings or their exits refused, by reason',
      labelNames: ['binding', 'reason'],
      registers,
    }),
  };
  return created;
});

export function methodLabel(method: string | undefined): string {
  return method !== undefined && METHODS.has(method) ? method : 'other';
}

export function statusClass(status: number | undefined): string {
  return status === undefined ? 'aborted' : `${Math.floor(status / 100)}xx`;
}

export function rejectionReason(status: number): string | undefined {
  return REJECTIONS[status];
}

export function createHttpServerMetrics(registry: Registry, binding: string): HttpServerMetrics {
  const metrics = shared(registry);
  const versionLabels = {
    'http/1.1': { binding, version: 'http/1.1' },
    h2: { binding, version: 'h2' },
  } as const;
  metrics.connections.inc(versionLabels['http/1.1'], 0);
  metrics.connections.inc(versionLabels.h2, 0);
  return {
    connectionOpened(version: HttpVersion): () => void {
      const labels = versionLabels[version];
      metrics.connections.inc(labels);
      return () => metrics.connections.dec(labels);
    },
    requestDone(method: string, status: number | undefined, seconds: number): void {
      const label = methodLabel(method);
      metrics.requests.inc({ binding, method: label, status: statusClass(status) });
      metrics.duration.observe({ binding, method: label }, seconds);
    },
    rejected(status: number, reason = rejectionReason(status)): void {
      if (reason !== undefined) metrics.rejected.inc({ binding, reason });
    },
  };
}
