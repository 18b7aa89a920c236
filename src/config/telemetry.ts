import type { Segment } from './source.ts';
import {
  collectsGroup,
  FOREIGN_ZILLA_METRICS,
  metricGroup,
  ZILLA_METRICS,
  type ZillaMetricName,
} from './telemetry-metrics.ts';

export interface TelemetryConfig {
  /** Only the exporters kgate acts on, in file order. */
  exporters: PrometheusExporterConfig[];
  /** Names of the `stdout` exporters, which print events as log lines on standard output; absent: none. */
  stdout?: string[];
  /** The metrics of `telemetry.metrics` that kgate collects, in file order; absent: none. */
  metrics?: ZillaMetricName[];
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
  readonly attributes?: { readonly [name: string]: string };
  readonly metrics?: readonly string[];
  readonly exporters?: { readonly [name: string]: ExporterJson };
}

/** The schema requires options of prometheus and otlp exporters only. */
type ExporterJson =
  | { readonly type: 'prometheus'; readonly vault?: string; readonly options: PrometheusOptionsJson }
  | { readonly type: 'otlp'; readonly vault?: string; readonly options: object }
  | { readonly type: 'stdout'; readonly vault?: string; readonly options?: object };

export interface PrometheusOptionsJson {
  readonly endpoints: readonly PrometheusEndpointJson[];
}

export interface PrometheusEndpointJson {
  readonly scheme?: 'http';
  readonly host?: string;
  readonly path?: string;
  readonly port: number;
}

/** A binding's `telemetry`, as the schema admits it. */
export interface BindingTelemetryJson {
  readonly metrics?: readonly string[];
  readonly attributes?: { readonly [name: string]: string };
}

/** Something to say about a telemetry option, as found by the loader. */
export interface TelemetryProblem {
  segments: Segment[];
  message: string;
}

/** Reads a telemetry section that has already passed the schema. */
export function toTelemetry(raw: unknown): TelemetryConfig {
  const section = raw as TelemetryJson;
  const exporters: PrometheusExporterConfig[] = [];
  const stdout: string[] = [];
  for (const [name, exporter] of Object.entries(section.exporters ?? {})) {
    if (exporter.type === 'stdout') stdout.push(name);
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
  const config: TelemetryConfig = { exporters };
  if (stdout.length > 0) config.stdout = stdout;
  const metrics = collectedMetrics(section);
  if (metrics.length > 0) config.metrics = metrics;
  return config;
}

const COLLECTED = new Set<string>(ZILLA_METRICS.map((m) => m.name));

function isCollected(name: string): name is ZillaMetricName {
  return COLLECTED.has(name);
}

function collectedMetrics(section: TelemetryJson | undefined): ZillaMetricName[] {
  return [...new Set(section?.metrics ?? [])].filter(isCollected);
}

/** Every name Zilla's schema admits in `telemetry.metrics`. */
export const ZILLA_METRIC_NAMES: readonly string[] = [...COLLECTED, ...FOREIGN_ZILLA_METRICS];

/**
 * A binding's metric selector as Zilla reads it: a Java regular expression matched against the
 * whole name. The forms Zilla configs use (`http.*`, `stream.opens.*`, a plain name) mean the
 * same in JavaScript; a selector JavaScript cannot compile is reported by the loader.
 */
export function compileSelector(selector: string): RegExp | string {
  try {
    return new RegExp(`^(?:${selector})$`, 'u');
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/**
 * The metrics a binding collects: those of `telemetry.metrics` that one of its selectors matches
 * and that kgate counts for its type and kind. A binding without `telemetry` collects none, as in
 * Zilla.
 */
export function bindingMetrics(
  section: unknown,
  binding: { readonly type: string; readonly kind: string; readonly telemetry?: BindingTelemetryJson },
): ZillaMetricName[] {
  const selectors = (binding.telemetry?.metrics ?? []).map(compileSelector);
  const selected: ZillaMetricName[] = [];
  for (const name of collectedMetrics(section as TelemetryJson | undefined)) {
    if (!collectsGroup(metricGroup(name), binding.type, binding.kind)) continue;
    if (selectors.some((s) => typeof s !== 'string' && s.test(name))) selected.push(name);
  }
  return selected;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Binding selectors that are not regular expressions: errors, since they would select nothing. */
export function telemetryErrors(bindings: unknown): TelemetryProblem[] {
  const errors: TelemetryProblem[] = [];
  for (const [name, binding] of Object.entries(isObject(bindings) ? bindings : {})) {
    if (!isObject(binding) || !isObject(binding['telemetry'])) continue;
    const metrics = binding['telemetry']['metrics'];
    if (!Array.isArray(metrics)) continue;
    metrics.forEach((selector: unknown, index) => {
      if (typeof selector !== 'string') return;
      const compiled = compileSelector(selector);
      if (typeof compiled === 'string') {
        errors.push({
          segments: ['bindings', name, 'telemetry', 'metrics', index],
          message: `not a regular expression (${compiled}); use a metric name or a pattern such as "http.*"`,
        });
      }
    });
  }
  return errors;
}

/** What kgate does not act on in a telemetry section and in the bindings' `telemetry`. */
export function telemetryWarnings(raw: unknown, bindings: unknown): TelemetryProblem[] {
  const section = raw as TelemetryJson | undefined;
  const warnings: TelemetryProblem[] = [];
  if (section !== undefined && 'attributes' in section) {
    warnings.push({
      segments: ['telemetry', 'attributes'],
      message:
        'Zilla gives these to otlp exporters as resource attributes (its prometheus and stdout exporters do not use them); kgate has no otlp exporter, so they appear nowhere',
    });
  }
  (section?.metrics ?? []).forEach((name, index) => {
    if (!isCollected(name)) {
      warnings.push({
        segments: ['telemetry', 'metrics', index],
        message: `kgate has no ${metricGroup(name)} bindings, so ${name} is never collected`,
      });
    }
  });
  for (const [name, exporter] of Object.entries(section?.exporters ?? {})) {
    if (exporter.type === 'otlp') {
      warnings.push({
        segments: ['telemetry', 'exporters', name, 'type'],
        message:
          'otlp exporters are not supported by kgate, ignored: nothing is sent to this collector; scrape a prometheus exporter and read a stdout exporter instead',
      });
    } else if (exporter.type === 'stdout' && exporter.options !== undefined) {
      warnings.push({
        segments: ['telemetry', 'exporters', name, 'options'],
        message: "a stdout exporter takes no options (nor does Zilla's), ignored",
      });
    }
    if (exporter.type !== 'otlp' && exporter.vault !== undefined) {
      warnings.push({
        segments: ['telemetry', 'exporters', name, 'vault'],
        message: `a ${exporter.type} exporter uses no vault, ignored`,
      });
    }
  }
  for (const [name, binding] of Object.entries(isObject(bindings) ? bindings : {})) {
    if (!isObject(binding) || !isObject(binding['telemetry'])) continue;
    warnings.push(...bindingWarnings(section, name, binding));
  }
  return warnings;
}

function bindingWarnings(
  section: TelemetryJson | undefined,
  name: string,
  binding: Record<string, unknown>,
): TelemetryProblem[] {
  const telemetry = binding['telemetry'] as BindingTelemetryJson;
  const warnings: TelemetryProblem[] = [];
  const at = (...rest: Segment[]): Segment[] => ['bindings', name, 'telemetry', ...rest];
  if (telemetry.attributes !== undefined) {
    warnings.push({
      segments: at('attributes'),
      message:
        'per-request metric attributes are not supported by kgate, ignored: series carry the namespace and binding labels only',
    });
  }
  const listed = [...new Set(section?.metrics ?? [])];
  const type = String(binding['type']);
  const kind = String(binding['kind']);
  (telemetry.metrics ?? []).forEach((selector, index) => {
    const compiled = compileSelector(selector);
    if (typeof compiled === 'string') return;
    const matched = listed.filter((metric) => compiled.test(metric));
    if (matched.length === 0) {
      warnings.push({
        segments: at('metrics', index),
        message: `matches none of telemetry.metrics (${listed.join(', ') || 'none listed'}); it selects nothing`,
      });
      return;
    }
    const offered = matched.filter(
      (metric) => isCollected(metric) && collectsGroup(metricGroup(metric), type, kind),
    );
    if (offered.length === 0) {
      warnings.push({
        segments: at('metrics', index),
        message: `kgate collects none of ${matched.join(', ')} on a ${type} ${kind} binding; it selects nothing`,
      });
    }
  });
  return warnings;
}
