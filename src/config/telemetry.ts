import type { Segment } from './source.ts';

export interface TelemetryConfig {
  /** Only the exporters kgate acts on, in file order. */
  exporters: PrometheusExporterConfig[];
}

export interface PrometheusExporterConfig {
  name: string;
  type: 'prometheus';
  endpoints: PrometheusEndpoint[];
}

export interface PrometheusEndpoint {
  scheme: 'http';
  /** The address listened on; DEFAULT_TELEMETRY_HOST when absent. */
  host: string;
  /** Where the metrics are served; `/metrics` when absent. */
  path: string;
  port: number;
}

export const DEFAULT_METRICS_PATH = '/metrics';

/**
 * Loopback: what the telemetry port answers (topic names, offsets, broker addresses in metric
 * labels, the reasons a binding is not ready) is for this machine unless the config says otherwise.
 */
export const DEFAULT_TELEMETRY_HOST = '127.0.0.1';

/** The telemetry section as the schema admits it (telemetry-schema.ts). */
export interface TelemetryJson {
  readonly attributes?: object;
  readonly metrics?: readonly string[];
  readonly exporters?: { readonly [name: string]: ExporterJson };
}

/** The schema requires options of a prometheus exporter only. */
type ExporterJson =
  | { readonly type: 'prometheus'; readonly options: PrometheusOptionsJson }
  | { readonly type: 'otlp' | 'stdout'; readonly options?: object };

export interface PrometheusOptionsJson {
  readonly endpoints: readonly PrometheusEndpointJson[];
}

export interface PrometheusEndpointJson {
  readonly scheme?: 'http';
  readonly host?: string;
  readonly path?: string;
  readonly port: number;
}

/** What kgate ignores in a telemetry section, as found by the loader. */
export interface TelemetryWarning {
  segments: Segment[];
  message: string;
}

/** Reads a telemetry section that has already passed the schema. */
export function toTelemetry(raw: unknown): TelemetryConfig {
  const section = raw as TelemetryJson;
  const exporters: PrometheusExporterConfig[] = [];
  for (const [name, exporter] of Object.entries(section.exporters ?? {})) {
    if (exporter.type !== 'prometheus') continue;
    exporters.push({
      name,
      type: 'prometheus',
      endpoints: exporter.options.endpoints.map((endpoint) => ({
        scheme: 'http',
        host: endpoint.host ?? DEFAULT_TELEMETRY_HOST,
        path: endpoint.path ?? DEFAULT_METRICS_PATH,
        port: endpoint.port,
      })),
    });
  }
  return { exporters };
}

/** What kgate ignores of a telemetry section that has already passed the schema. */
export function telemetryWarnings(raw: unknown): TelemetryWarning[] {
  if (raw === undefined) return [];
  const section = raw as TelemetryJson;
  const warnings: TelemetryWarning[] = [];
  if ('attributes' in section) {
    warnings.push({
      segments: ['telemetry', 'attributes'],
      message: 'not supported by kgate, ignored; metrics carry no resource attributes',
    });
  }
  if ('metrics' in section) {
    warnings.push({
      segments: ['telemetry', 'metrics'],
      message: 'not supported by kgate, ignored; kgate always exports all of its metrics',
    });
  }
  for (const [name, exporter] of Object.entries(section.exporters ?? {})) {
    if (exporter.type === 'prometheus') continue;
    warnings.push({
      segments: ['telemetry', 'exporters', name, 'type'],
      message: `${exporter.type} exporters are not supported by kgate, ignored; use a prometheus exporter`,
    });
  }
  return warnings;
}
