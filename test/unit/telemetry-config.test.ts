import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { ConfigError, formatDiagnostic, parseConfig } from '../../src/config/index.ts';

const FILE = '/etc/kgate/kgate.yaml';
const yaml = (...lines: string[]): string => lines.join('\n') + '\n';
const BINDINGS = ['bindings:', '  tcp: { type: tcp, kind: client }'];

function errorsOf(text: string): string[] {
  try {
    parseConfig(text, FILE, {});
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.message.split('\n');
  }
  assert.fail('expected a ConfigError');
}

describe('telemetry config', () => {
  it('reads prometheus exporters in Zilla shape, defaulting the path and the host to loopback', () => {
    const config = parseConfig(
      yaml(
        'telemetry:',
        '  exporters:',
        '    prometheus_exporter:',
        '      type: prometheus',
        '      options:',
        '        endpoints:',
        '          - { scheme: http, path: /metrics, port: 7190 }',
        '          - port: ${{env.PORT}}',
        '          - { host: 0.0.0.0, port: 7192 }',
        ...BINDINGS,
      ),
      FILE,
      { PORT: '7191' },
    );
    assert.deepEqual(config.warnings, []);
    assert.deepEqual(config.telemetry, {
      exporters: [
        {
          name: 'prometheus_exporter',
          type: 'prometheus',
          endpoints: [
            { scheme: 'http', host: '127.0.0.1', path: '/metrics', port: 7190 },
            { scheme: 'http', host: '127.0.0.1', path: '/metrics', port: 7191 },
            { scheme: 'http', host: '0.0.0.0', path: '/metrics', port: 7192 },
          ],
        },
      ],
    });
  });

  it('leaves telemetry absent when the file has none', () => {
    assert.equal(parseConfig(yaml(...BINDINGS), FILE, {}).telemetry, undefined);
  });

  it('rejects bad prometheus endpoints with every error, positioned', () => {
    assert.deepEqual(
      errorsOf(
        yaml(
          'telemetry:',
          '  exporters:',
          '    p:',
          '      type: prometheus',
          '      options:',
          '        endpoints: [ { scheme: https, path: metrics, port: 70000, host: "", tls: x } ]',
          ...BINDINGS,
        ),
      ),
      [
        'kgate.yaml:6:32 telemetry.exporters.p.options.endpoints[0].scheme: must be one of http',
        'kgate.yaml:6:45 telemetry.exporters.p.options.endpoints[0].path: must be a path starting with "/"',
        'kgate.yaml:6:60 telemetry.exporters.p.options.endpoints[0].port: must be at most 65535',
        'kgate.yaml:6:73 telemetry.exporters.p.options.endpoints[0].host: must not be empty',
        'kgate.yaml:6:77 telemetry.exporters.p.options.endpoints[0]: unknown property "tls"',
      ],
    );
  });

  it('requires options and a port for a prometheus exporter', () => {
    assert.deepEqual(
      errorsOf(
        yaml(
          'telemetry:',
          '  exporters:',
          '    p: { type: prometheus }',
          '    q: { type: prometheus, options: { endpoints: [] } }',
          '    r: { type: prometheus, options: { endpoints: [ { path: /m } ] } }',
          ...BINDINGS,
        ),
      ),
      [
        'kgate.yaml:3:5 telemetry.exporters.p.options: is required when type is prometheus',
        'kgate.yaml:4:50 telemetry.exporters.q.options.endpoints: must not be empty',
        'kgate.yaml:5:52 telemetry.exporters.r.options.endpoints[0].port: is required',
      ],
    );
  });

  it('rejects unknown exporter types, unknown keys and bad exporter names', () => {
    assert.deepEqual(
      errorsOf(
        yaml(
          'telemetry:',
          '  exporters:',
          '    q: { type: otel }',
          '    9x: { type: stdout }',
          '  attribute: {}',
          ...BINDINGS,
        ),
      ),
      [
        'kgate.yaml:3:16 telemetry.exporters.q.type: must be one of prometheus, otlp, stdout',
        'kgate.yaml:4:5 telemetry.exporters: name "9x" must start with a letter and contain only letters, digits, ".", "_" and "-"',
        'kgate.yaml:5:3 telemetry: unknown property "attribute"; did you mean "attributes"?',
      ],
    );
  });

  it('accepts what kgate does not export, with a warning for each', () => {
    const config = parseConfig(
      yaml(
        'telemetry:',
        '  attributes: { service.namespace: example }',
        '  metrics: [stream.opens.sent]',
        '  exporters:',
        '    otlp_exporter: { type: otlp, options: { endpoint: "http://collector:4318" } }',
        '    stdout_exporter: { type: stdout }',
        ...BINDINGS,
      ),
      FILE,
      {},
    );
    assert.deepEqual(config.warnings.map(formatDiagnostic), [
      'kgate.yaml:2:3 telemetry.attributes: not supported by kgate, ignored; metrics carry no resource attributes',
      'kgate.yaml:3:3 telemetry.metrics: not supported by kgate, ignored; kgate always exports all of its metrics',
      'kgate.yaml:5:22 telemetry.exporters.otlp_exporter.type: otlp exporters are not supported by kgate, ignored; use a prometheus exporter',
      'kgate.yaml:6:24 telemetry.exporters.stdout_exporter.type: stdout exporters are not supported by kgate, ignored; use a prometheus exporter',
    ]);
    assert.deepEqual(config.telemetry, { exporters: [] });
  });
});
