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
  /** Where the metrics are served; `/metrics` when absent. */
  path: string;
  port: number;
}

export const DEFAULT_METRICS_PATH = '/metrics';

/** The options of a prometheus exporter as the schema admits them (telemetry-schema.ts). */
export interface PrometheusOptionsJson {
  readonly endpoints: readonly PrometheusEndpointJson[];
}

export interface PrometheusEndpointJson {
  readonly scheme?: 'http';
  readonly path?: string;
  readonly port: number;
}

/** What kgate ignores in a telemetry section, as found by the loader. */
export interface TelemetryWarning {
  segments: Segment[];
  message: string;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads a telemetry section that has already passed the schema. */
export function toTelemetry(raw: unknown): TelemetryConfig {
  const exporters: PrometheusExporterConfig[] = [];
  const declared = isObject(raw) && isObject(raw['exporters']) ? raw['exporters'] : {};
  for (const [name, exporter] of Object.entries(declared)) {
    if (!isObject(exporter) || exporter['type'] !== 'prometheus') continue;
    const options = isObject(exporter['options']) ? exporter['options'] : {};
    const endpoints = Array.isArray(options['endpoints']) ? (options['endpoints'] as unknown[]) : [];
    exporters.push({
      name,
      type: 'prometheus',
      endpoints: endpoints.filter(isObject).map((endpoint) => ({
        scheme: 'http',
        path: typeof endpoint['path'] === 'string' ? endpoint['path'] : DEFAULT_METRICS_PATH,
        port: Number(endpoint['port']),
      })),
    });
  }
  return { exporters };
}

export function telemetryWarnings(raw: unknown): TelemetryWarning[] {
  if (!isObject(raw)) return [];
  const warnings: TelemetryWarning[] = [];
  if ('attributes' in raw) {
    warnings.push({
      segments: ['telemetry', 'attributes'],
      message: 'not supported by kgate, ignored; metrics carry no resource attributes',
    });
  }
  if ('metrics' in raw) {
    warnings.push({
      segments: ['telemetry', 'metrics'],
      message: 'not supported by kgate, ignored; kgate always exports all of its metrics',
    });
  }
  const exporters = isObject(raw['exporters']) ? raw['exporters'] : {};
  for (const [name, exporter] of Object.entries(exporters)) {
    if (!isObject(exporter) || exporter['type'] === 'prometheus') continue;
    warnings.push({
      segments: ['telemetry', 'exporters', name, 'type'],
      message: `${String(exporter['type'])} exporters are not supported by kgate, ignored; use a prometheus exporter`,
    });
  }
  return warnings;
}
