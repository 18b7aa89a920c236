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
        '  metrics: [stream.opens.sent, grpc.duration]',
        '  exporters:',
        '    otlp_exporter: { type: otlp, options: { endpoint: { location: "http://collector:4318" } } }',
        '    stdout_exporter: { type: stdout }',
        '    stdout_too: { type: stdout, vault: server, options: { format: json } }',
        ...BINDINGS,
      ),
      FILE,
      {},
    );
    assert.deepEqual(config.warnings.map(formatDiagnostic), [
      'kgate.yaml:2:3 telemetry.attributes: Zilla gives these to otlp exporters as resource attributes (its prometheus and stdout exporters do not use them); kgate has no otlp exporter, so they appear nowhere',
      'kgate.yaml:3:32 telemetry.metrics[1]: kgate has no grpc bindings, so grpc.duration is never collected',
      'kgate.yaml:5:22 telemetry.exporters.otlp_exporter.type: otlp exporters are not supported by kgate, ignored: nothing is sent to this collector; scrape a prometheus exporter and read a stdout exporter instead',
      'kgate.yaml:7:33 telemetry.exporters.stdout_too.vault: a stdout exporter uses no vault, ignored',
      "kgate.yaml:7:48 telemetry.exporters.stdout_too.options: a stdout exporter takes no options (nor does Zilla's), ignored",
    ]);
    assert.deepEqual(config.telemetry, {
      exporters: [],
      stdout: ['stdout_exporter', 'stdout_too'],
      metrics: ['stream.opens.sent'],
    });
  });

  it("checks an otlp exporter's options as Zilla's schema does", () => {
    assert.deepEqual(
      errorsOf(
        yaml(
          'telemetry:',
          '  exporters:',
          '    a: { type: otlp, options: { endpoint: "http://collector:4318" } }',
          '    b: { type: otlp, options: { endpoint: { location: "collector:4318" } } }',
          '    c: { type: otlp }',
          ...BINDINGS,
        ),
      ),
      [
        'kgate.yaml:3:43 telemetry.exporters.a.options.endpoint: must be an object',
        'kgate.yaml:4:55 telemetry.exporters.b.options.endpoint.location: must be an http:// or https:// URL',
        'kgate.yaml:5:5 telemetry.exporters.c.options: is required when type is otlp',
      ],
    );
  });
});

describe('metric selection', () => {
  const NORTH = [
    'bindings:',
    '  north_tcp_server:',
    '    type: tcp',
    '    kind: server',
    '    options: { host: 127.0.0.1, port: 0 }',
    '    exit: north_http_server',
    '    telemetry: { metrics: [stream.*] }',
    '  north_http_server:',
    '    type: http',
    '    kind: server',
    '    exit: north_echo',
    '    telemetry: { metrics: [http.*, stream.opens.*] }',
    '  north_echo:',
    '    type: http-filesystem',
    '    kind: proxy',
    '    routes: [{ when: [{ path: "/{path}" }], exit: files, with: { path: "${params.path}" } }]',
    '    telemetry: { metrics: [.*] }',
    '  files: { type: filesystem, kind: server, options: { location: /srv/www/ } }',
  ];

  it('gives each binding the listed metrics its selectors match and its type collects', () => {
    const config = parseConfig(
      yaml(
        'telemetry:',
        '  metrics: [http.duration, http.active.requests, stream.opens.received, stream.closes.sent]',
        ...NORTH,
      ),
      FILE,
      {},
    );
    assert.deepEqual(config.warnings.map(formatDiagnostic), [
      'kgate.yaml:19:28 bindings.north_echo.telemetry.metrics[0]: kgate collects none of http.duration, http.active.requests, stream.opens.received, stream.closes.sent on a http-filesystem proxy binding; it selects nothing',
    ]);
    assert.deepEqual(config.telemetry?.metrics, [
      'http.duration',
      'http.active.requests',
      'stream.opens.received',
      'stream.closes.sent',
    ]);
    assert.deepEqual(config.bindings.get('north_tcp_server')?.metrics, [
      'stream.opens.received',
      'stream.closes.sent',
    ]);
    assert.deepEqual(config.bindings.get('north_http_server')?.metrics, [
      'http.duration',
      'http.active.requests',
      'stream.opens.received',
    ]);
    assert.equal(config.bindings.get('north_echo')?.metrics, undefined);
  });

  it('collects nothing for a binding without telemetry, nor for metrics not listed at the top', () => {
    const config = parseConfig(yaml('telemetry:', '  metrics: [http.duration]', ...NORTH), FILE, {});
    assert.equal(config.bindings.get('north_tcp_server')?.metrics, undefined);
    assert.deepEqual(config.bindings.get('north_http_server')?.metrics, ['http.duration']);
    assert.deepEqual(config.warnings.map(formatDiagnostic), [
      'kgate.yaml:9:28 bindings.north_tcp_server.telemetry.metrics[0]: matches none of telemetry.metrics (http.duration); it selects nothing',
      'kgate.yaml:14:36 bindings.north_http_server.telemetry.metrics[1]: matches none of telemetry.metrics (http.duration); it selects nothing',
      'kgate.yaml:19:28 bindings.north_echo.telemetry.metrics[0]: kgate collects none of http.duration on a http-filesystem proxy binding; it selects nothing',
    ]);
  });

  it('warns of selectors a binding type cannot collect and of per-request attributes', () => {
    const config = parseConfig(
      yaml(
        'telemetry:',
        '  metrics: [http.duration]',
        'bindings:',
        '  south:',
        '    type: kafka',
        '    kind: client',
        '    options: { servers: ["localhost:9092"] }',
        '    telemetry:',
        '      metrics: [http.duration]',
        '      attributes: { method: "${http.request.method}" }',
      ),
      FILE,
      {},
    );
    assert.equal(config.bindings.get('south')?.metrics, undefined);
    assert.deepEqual(config.warnings.map(formatDiagnostic), [
      'kgate.yaml:9:17 bindings.south.telemetry.metrics[0]: kgate collects none of http.duration on a kafka client binding; it selects nothing',
      'kgate.yaml:10:7 bindings.south.telemetry.attributes: per-request metric attributes are not supported by kgate, ignored: series carry the namespace and binding labels only',
    ]);
  });

  it('refuses wildcards at the top, where Zilla lists names, and selectors that do not compile', () => {
    assert.deepEqual(
      errorsOf(
        yaml(
          'telemetry:',
          '  metrics: [http.duration, http.duration]',
          'bindings:',
          '  north_http_server:',
          '    type: http',
          '    kind: server',
          '    exit: x',
          '    telemetry: { metrics: ["http.(", ""] }',
          ...NORTH.slice(-6).map((line) => line.replace('north_echo:', 'x:')),
        ),
      ).map((line) => line.replace(/\(Invalid regular expression.*\);/, '(...);')),
      [
        'kgate.yaml:2:12 telemetry.metrics: must not repeat items (items 0 and 1 are equal)',
        'kgate.yaml:8:28 bindings.north_http_server.telemetry.metrics[0]: not a regular expression (...); use a metric name or a pattern such as "http.*"',
        'kgate.yaml:8:38 bindings.north_http_server.telemetry.metrics[1]: must not be empty',
      ],
    );
    const wildcard = errorsOf(yaml('telemetry:', '  metrics: [stream.*]', ...BINDINGS));
    assert.equal(wildcard.length, 1);
    assert.match(
      wildcard[0] ?? '',
      /^kgate\.yaml:2:13 telemetry\.metrics\[0\]: must be one of http\.request\.size, /,
    );
  });
});
