import type { JsonSchema, ObjectSchemaFor } from './json-schema.ts';
import type { PrometheusEndpointJson, PrometheusOptionsJson, TelemetryJson } from './telemetry.ts';

const prometheusEndpoint = {
  type: 'object',
  required: ['port'],
  properties: {
    scheme: { description: 'Only `http`. Defaults to `http`.', enum: ['http'] },
    path: {
      description:
        'Path of the metrics in Prometheus text format. Defaults to `/metrics`. The same server answers `/health` (200 while the process runs), `/ready` (200 once every binding has started and every kafka client has a live broker connection, 503 with a JSON body naming what is not ready otherwise; a failed broker check is reused for 5 s) and `/status` (what `kgate status` prints).',
      type: 'string',
      pattern: '^/[^?#]*$',
      patternErrorMessage: 'must be a path starting with "/"',
    },
    host: {
      description:
        'Address to listen on. Defaults to `127.0.0.1`, so that only this machine reaches the metrics, `/ready` and `/status`; set `0.0.0.0` (or an interface address) for a Prometheus or an orchestrator elsewhere. Clients on other machines get the reasons a binding is not ready without their details (broker addresses, the SASL user).',
      type: 'string',
      minLength: 1,
    },
    port: {
      description: 'Port to listen on, at `host`.',
      type: 'integer',
      minimum: 1,
      maximum: 65535,
    },
  },
  additionalProperties: false,
} satisfies ObjectSchemaFor<PrometheusEndpointJson>;

const prometheusOptions = {
  type: 'object',
  required: ['endpoints'],
  properties: {
    endpoints: {
      description:
        'HTTP endpoints serving the metrics. Endpoints on the same host and port share one server.',
      type: 'array',
      minItems: 1,
      items: prometheusEndpoint,
    },
  },
  additionalProperties: false,
} satisfies ObjectSchemaFor<PrometheusOptionsJson>;

/** The schema of the top-level `telemetry` section, as definitions of the config schema. */
export const TELEMETRY_DEFINITIONS: { readonly [name: string]: JsonSchema } = {
  telemetry: {
    type: 'object',
    properties: {
      attributes: {
        description: 'Zilla resource attributes. Accepted for compatibility and ignored, with a warning.',
        type: 'object',
      },
      metrics: {
        description:
          'Zilla metric names to collect. Accepted for compatibility and ignored, with a warning; kgate always collects all of its metrics.',
        $ref: '#/definitions/stringList',
      },
      exporters: {
        description: 'Exporters by name.',
        type: 'object',
        propertyNames: { $ref: '#/definitions/name' },
        additionalProperties: { $ref: '#/definitions/telemetryExporter' },
      },
    },
    additionalProperties: false,
  } satisfies ObjectSchemaFor<TelemetryJson>,
  telemetryExporter: {
    type: 'object',
    required: ['type'],
    properties: {
      type: {
        description:
          '`prometheus` serves metrics over HTTP. `otlp` and `stdout` are accepted for compatibility and ignored, with a warning.',
        enum: ['prometheus', 'otlp', 'stdout'],
      },
      options: {
        description: 'Options of the exporter. Required for `prometheus`, to give its endpoints.',
        type: 'object',
      },
    },
    additionalProperties: false,
    allOf: [
      {
        if: { properties: { type: { const: 'prometheus' } }, required: ['type'] },
        then: { required: ['options'], properties: { options: { $ref: '#/definitions/prometheusOptions' } } },
      },
    ],
  },
  prometheusOptions,
};
