import type { JsonSchema, ObjectSchemaFor } from './json-schema.ts';
import {
  ZILLA_METRIC_NAMES,
  type BindingTelemetryJson,
  type PrometheusEndpointJson,
  type PrometheusOptionsJson,
  type TelemetryJson,
} from './telemetry.ts';

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

/** Zilla's otlp exporter options, checked so that a mistyped block is an error, though kgate ignores it. */
const otlpOptions = {
  type: 'object',
  required: ['endpoint'],
  properties: {
    interval: { description: 'Seconds between exports. Defaults to `30`.', type: 'number' },
    signals: { type: 'array', items: { enum: ['metrics', 'logs'] } },
    endpoint: {
      type: 'object',
      required: ['location'],
      properties: {
        protocol: { enum: ['http'] },
        location: {
          type: 'string',
          pattern: '^https?://',
          patternErrorMessage: 'must be an http:// or https:// URL',
        },
        overrides: {
          type: 'object',
          properties: { metrics: { type: 'string' }, logs: { type: 'string' } },
          additionalProperties: false,
        },
      },
      additionalProperties: false,
    },
    tls: {
      type: 'object',
      properties: {
        keys: { $ref: '#/definitions/stringList' },
        trust: { $ref: '#/definitions/stringList' },
        trustcacerts: { type: 'boolean' },
      },
      additionalProperties: false,
    },
    credentials: {
      type: 'object',
      properties: {
        headers: {
          type: 'object',
          properties: { authorization: { type: 'string' } },
          additionalProperties: false,
        },
      },
      additionalProperties: false,
    },
  },
  additionalProperties: false,
} satisfies JsonSchema;

/** Attribute names as Zilla admits them, each with a string value. */
const attributes = {
  type: 'object',
  propertyNames: { $ref: '#/definitions/name' },
  additionalProperties: { type: 'string' },
} satisfies JsonSchema;

/** The schema of the top-level `telemetry` section, as definitions of the config schema. */
export const TELEMETRY_DEFINITIONS: { readonly [name: string]: JsonSchema } = {
  telemetry: {
    type: 'object',
    properties: {
      attributes: {
        ...attributes,
        description:
          'Resource attributes, which Zilla gives to otlp exporters only. kgate has no otlp exporter: accepted, with a warning.',
      },
      metrics: {
        description:
          "Zilla metric names to collect, exactly (selectors with wildcards belong in a binding's `telemetry.metrics`). kgate collects `http.request.size`, `http.response.size`, `http.active.requests`, `http.duration` and the ten `stream.*` metrics, each on the bindings whose `telemetry.metrics` selects it; the `grpc.*` and `mcp.*` names are accepted, with a warning, and never collected.",
        type: 'array',
        uniqueItems: true,
        items: { enum: ZILLA_METRIC_NAMES },
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
          '`prometheus` serves metrics over HTTP; `stdout` prints events as log lines on standard output. `otlp` is checked and ignored, with a warning.',
        enum: ['prometheus', 'otlp', 'stdout'],
      },
      vault: { description: 'Used by Zilla for otlp TLS only; ignored, with a warning.', type: 'string' },
      options: {
        description:
          'Options of the exporter. Required for `prometheus`, to give its endpoints, and for `otlp`.',
        type: 'object',
      },
    },
    additionalProperties: false,
    allOf: [
      {
        if: { properties: { type: { const: 'prometheus' } }, required: ['type'] },
        then: { required: ['options'], properties: { options: { $ref: '#/definitions/prometheusOptions' } } },
      },
      {
        if: { properties: { type: { const: 'otlp' } }, required: ['type'] },
        then: { required: ['options'], properties: { options: otlpOptions } },
      },
    ],
  },
  prometheusOptions,
  bindingTelemetry: {
    description:
      "What this binding collects: `metrics` selects among the top-level `telemetry.metrics` by name or pattern (`http.*`, `stream.*`), as Zilla does. A binding without it collects none of them (kgate's own `kgate_*` series are always there). `attributes` (per-request labels) is accepted and ignored, with a warning.",
    type: 'object',
    properties: {
      metrics: { type: 'array', items: { type: 'string', minLength: 1 } },
      attributes,
    },
    additionalProperties: false,
  } satisfies ObjectSchemaFor<BindingTelemetryJson>,
};
