/**
 * The metrics a Zilla config may name in `telemetry.metrics`, with what Zilla's exporters derive
 * from each: the kind and unit give the Prometheus name (dots to underscores, `_bytes` or
 * `_milliseconds`, `_total` for counters). kgate collects the `http` and `stream` groups; the
 * others exist in Zilla for bindings kgate does not have, and Zilla has no `kafka` group.
 */
export interface ZillaMetric {
  readonly name: string;
  readonly kind: 'counter' | 'gauge' | 'histogram';
  readonly unit: 'count' | 'bytes' | 'milliseconds';
  readonly description: string;
}

function metric(
  name: string,
  kind: ZillaMetric['kind'],
  unit: ZillaMetric['unit'],
  description: string,
): ZillaMetric {
  return { name, kind, unit, description };
}

/** Collected by kgate, in the order Zilla's schema lists them. */
export const ZILLA_METRICS: readonly ZillaMetric[] = [
  metric('http.request.size', 'histogram', 'bytes', 'HTTP request content length'),
  metric('http.response.size', 'histogram', 'bytes', 'HTTP response content length'),
  metric('http.active.requests', 'gauge', 'count', 'Number of active HTTP requests'),
  metric('http.duration', 'histogram', 'milliseconds', 'Duration of HTTP requests'),
  metric('stream.active.received', 'gauge', 'count', 'Number of currently active received streams'),
  metric('stream.active.sent', 'gauge', 'count', 'Number of currently active sent streams'),
  metric('stream.opens.received', 'counter', 'count', 'Number of opened received streams'),
  metric('stream.opens.sent', 'counter', 'count', 'Number of opened sent streams'),
  metric('stream.data.received', 'counter', 'bytes', 'Bytes of data on received streams'),
  metric('stream.data.sent', 'counter', 'bytes', 'Bytes of data on sent streams'),
  metric('stream.errors.received', 'counter', 'count', 'Number of errors on received streams'),
  metric('stream.errors.sent', 'counter', 'count', 'Number of errors on sent streams'),
  metric('stream.closes.received', 'counter', 'count', 'Number of closed received streams'),
  metric('stream.closes.sent', 'counter', 'count', 'Number of closed sent streams'),
];

export type ZillaMetricName = (typeof ZILLA_METRICS)[number]['name'];

/** Names Zilla's schema admits for bindings kgate does not have: accepted, never collected. */
export const FOREIGN_ZILLA_METRICS: readonly string[] = [
  'grpc.request.size',
  'grpc.response.size',
  'grpc.active.requests',
  'grpc.duration',
  'grpc.requests.per.rpc',
  'grpc.responses.per.rpc',
  ...[
    'initialize',
    'prompts.get',
    'prompts.list',
    'resources.list',
    'resources.read',
    'tools.call',
    'tools.list',
  ].flatMap((call) => [`mcp.${call}`, `mcp.${call}.duration`]),
];

/**
 * The binding types whose streams kgate counts for each group. Zilla counts `stream` metrics on
 * any binding from the frames passing through it; kgate counts them where a client's connection
 * or request is the stream: the servers facing clients.
 */
export const METRIC_GROUP_BINDINGS: Readonly<Record<string, readonly string[]>> = {
  http: ['http server'],
  stream: ['http server', 'tcp server'],
};

/** `group.rest` → `group`. */
export function metricGroup(name: string): string {
  const dot = name.indexOf('.');
  return dot < 0 ? name : name.slice(0, dot);
}

/** Whether a binding of this type and kind collects metrics of the group. */
export function collectsGroup(group: string, type: string, kind: string): boolean {
  return METRIC_GROUP_BINDINGS[group]?.includes(`${type} ${kind}`) ?? false;
}

/** The name Zilla's prometheus exporter gives the metric's series. */
export function prometheusName(metric: ZillaMetric): string {
  let name = metric.name.replaceAll('.', '_');
  if (metric.unit === 'bytes') name += '_bytes';
  else if (metric.unit === 'milliseconds') name += '_milliseconds';
  if (metric.kind === 'counter') name += '_total';
  return name;
}
