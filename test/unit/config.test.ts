import { strict as assert } from 'node:assert';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { clientBindingOptions } from '../../src/bindings/kafka/client/config.ts';
import {
  ConfigError,
  formatDiagnostic,
  knownBindingTypes,
  loadConfigFile,
  parseConfig,
} from '../../src/config/index.ts';
import type { LoadedConfig } from '../../src/config/index.ts';

const FILE = '/etc/kgate/kgate.yaml';
const SEED_ENV = { KAFKA_BOOTSTRAP_SERVER: 'localhost:9092', SASL_USERNAME: 'user', SASL_PASSWORD: 'secret' };
const examples = new URL('../../examples/', import.meta.url);

/** Lines of the ConfigError thrown for `text`; fails if the file loads. */
function errorsOf(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(text, FILE, env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    assert.equal(error.message, error.diagnostics.map(formatDiagnostic).join('\n'));
    return error.message.split('\n');
  }
  assert.fail('expected a ConfigError');
}

function load(text: string, env: NodeJS.ProcessEnv = {}): LoadedConfig {
  return parseConfig(text, FILE, env);
}

// Lines are joined rather than written as one template so that positions in assertions are easy to count.
const yaml = (...lines: string[]): string => lines.join('\n') + '\n';

const KAFKA_CLIENT = ['  kafka_client:', '    type: kafka', '    kind: client'];

describe('config errors', () => {
  it('reports a YAML syntax error with its position', () => {
    assert.deepEqual(errorsOf(yaml('name: x', 'bindings: { a: 1', 'other: 2')), [
      'kgate.yaml:3:1 invalid YAML: Flow map in block collection must be sufficiently indented and end with a }',
    ]);
  });

  it('reports duplicate keys as invalid YAML', () => {
    assert.deepEqual(errorsOf(yaml('name: x', 'name: y', 'bindings: {}')), [
      'kgate.yaml:2:1 invalid YAML: Map keys must be unique',
    ]);
  });

  it('reports a value outside an enum with the allowed values', () => {
    const text = yaml(
      'bindings:',
      ...KAFKA_CLIENT,
      '    options:',
      '      servers: [localhost:9092]',
      '      sasl:',
      '        mechanism: scram-sha-1',
      '        username: u',
      '        password: p',
    );
    assert.deepEqual(errorsOf(text), [
      'kgate.yaml:8:20 bindings.kafka_client.options.sasl.mechanism: must be one of plain, scram-sha-256, scram-sha-512, oauthbearer',
    ]);
  });

  it('reports an unknown option at its key, suggesting the closest name', () => {
    const text = yaml('bindings:', ...KAFKA_CLIENT, '    options:', '      serverz: [localhost:9092]');
    assert.deepEqual(errorsOf(text), [
      'kgate.yaml:6:7 bindings.kafka_client.options: unknown option "serverz"; did you mean "servers"?',
    ]);
  });

  it('reports unknown binding properties and top-level sections', () => {
    const text = yaml('name: x', 'bindngs: {}', 'bindings:', ...KAFKA_CLIENT, '    optons: {}');
    assert.deepEqual(errorsOf(text), [
      'kgate.yaml:2:1 unknown section "bindngs"; did you mean "bindings"?',
      'kgate.yaml:7:5 bindings.kafka_client: unknown property "optons"; did you mean "options"?',
    ]);
  });

  it('reports a wrong type', () => {
    const text = yaml('bindings:', ...KAFKA_CLIENT, '    options:', '      servers: [localhost:9092, 9093]');
    assert.deepEqual(errorsOf(text), [
      'kgate.yaml:6:33 bindings.kafka_client.options.servers[1]: must be a string',
    ]);
  });

  it('reports a missing property at its parent, naming the property', () => {
    const text = yaml(
      'bindings:',
      ...KAFKA_CLIENT,
      '    options:',
      '      sasl:',
      '        mechanism: plain',
      '        password: p',
    );
    assert.deepEqual(errorsOf(text), [
      'kgate.yaml:6:7 bindings.kafka_client.options.sasl.username: is required',
    ]);
  });

  it('refuses CORS credentials without an explicit list of origins, or with "*" or "null" in it', () => {
    const cors = (allow: string) =>
      yaml(
        'bindings:',
        '  http:',
        '    type: http',
        '    kind: server',
        '    options:',
        `      access-control: { policy: cross-origin, allow: ${allow} }`,
        '    exit: http',
      ).replace('exit: http', 'routes: []');
    assert.deepEqual(errorsOf(cors('{ credentials: true }')), [
      'kgate.yaml:6:47 bindings.http.options.access-control.allow.origins: is required when credentials is true',
    ]);
    assert.deepEqual(errorsOf(cors('{ credentials: true, origins: ["https://app.example", "*", "null"] }')), [
      'kgate.yaml:6:108 bindings.http.options.access-control.allow.origins[1]: must name one origin, such as "https://app.example": with credentials, "*" and "null" would let any site read responses as the user',
      'kgate.yaml:6:113 bindings.http.options.access-control.allow.origins[2]: must name one origin, such as "https://app.example": with credentials, "*" and "null" would let any site read responses as the user',
    ]);
    // Without credentials, any origin may be allowed: no response is read as a signed-in user.
    load(cors('{ origins: ["*", "null"] }'));
    load(cors('{ credentials: false }'));
    load(cors('{ credentials: true, origins: ["https://app.example"] }'));
  });

  it('refuses two listeners on one port, naming both', () => {
    const tcp = (name: string, options: string) =>
      `  ${name}: { type: tcp, kind: server, options: ${options}, exit: echo }`;
    const echo = '  echo: { type: tcp, kind: client, options: { host: localhost, port: 1 } }';
    assert.deepEqual(
      errorsOf(
        yaml(
          'bindings:',
          echo,
          tcp('a', '{ port: 8080 }'),
          tcp('b', '{ host: 127.0.0.1, port: [9000, "8000-8100"] }'),
          tcp('c', '{ host: 10.0.0.1, port: 9000 }'),
          tcp('d', '{ host: 10.0.0.2, port: 9000 }'),
          tcp('e', '{ port: 0 }'),
          tcp('f', '{ port: 0 }'),
          'telemetry:',
          '  exporters:',
          '    prometheus:',
          '      type: prometheus',
          // Telemetry listens on 127.0.0.1 unless told otherwise.
          '      options: { endpoints: [ { scheme: http, port: 8080 }, { port: 9000, path: /m } ] }',
        ),
      ),
      [
        'kgate.yaml:4:67 bindings.b.options.port: port 8080 is also listened on by binding a (0.0.0.0); a port takes one listener',
        'kgate.yaml:13:53 telemetry.exporters.prometheus.options.endpoints[0].port: port 8080 is also listened on by binding a (0.0.0.0); a port takes one listener',
        'kgate.yaml:13:69 telemetry.exporters.prometheus.options.endpoints[1].port: port 9000 is also listened on by binding b (127.0.0.1); a port takes one listener',
      ],
    );
  });

  it('reports an unset environment variable where it is used', () => {
    const text = yaml(
      'bindings:',
      ...KAFKA_CLIENT,
      '    options:',
      '      servers: [ "${{env.KAFKA_BOOTSTRAP_SERVER}}" ]',
    );
    assert.deepEqual(errorsOf(text), [
      'kgate.yaml:6:18 bindings.kafka_client.options.servers[0]: environment variable KAFKA_BOOTSTRAP_SERVER is not set',
    ]);
  });

  it('reports an exit to a missing binding, suggesting a close name', () => {
    const text = yaml(
      'bindings:',
      '  kafka_cache_server: { type: kafka, kind: cache_server, exit: kafka_clinet }',
      ...KAFKA_CLIENT,
    );
    assert.deepEqual(errorsOf(text), [
      'kgate.yaml:2:64 bindings.kafka_cache_server.exit: no binding named "kafka_clinet"; did you mean "kafka_client"?',
    ]);
  });

  it('reports a route exit to a missing binding without a suggestion when nothing is close', () => {
    const text = yaml(
      'bindings:',
      '  cache: { type: kafka, kind: cache_client, routes: [ { when: [ { topic: "a*" } ], exit: elsewhere } ] }',
    );
    assert.deepEqual(errorsOf(text), [
      'kgate.yaml:2:90 bindings.cache.routes[0].exit: no binding named "elsewhere"',
    ]);
  });

  it('reports exit cycles once, from the first binding in the cycle', () => {
    const text = yaml(
      'bindings:',
      '  a: { type: tcp, kind: server, options: { port: 1 }, exit: b }',
      '  b: { type: tls, kind: server, exit: c }',
      '  c: { type: http, kind: server, exit: a }',
      '  d: { type: sse, kind: server, exit: d }',
    );
    assert.deepEqual(errorsOf(text), [
      'kgate.yaml:2:61 bindings.a.exit: exit cycle a -> b -> c -> a',
      'kgate.yaml:5:39 bindings.d.exit: exit cycle d -> d',
    ]);
  });

  it('reports an unknown type with the known types', () => {
    assert.deepEqual(errorsOf(yaml('bindings:', '  a: { type: kafak, kind: client }')), [
      'kgate.yaml:2:14 bindings.a.type: unknown type "kafak"; known types: kafka, tcp, tls, http, sse, http-kafka, sse-kafka, http-filesystem, filesystem, echo, fan',
    ]);
  });

  it('reports an unknown kind with the known kinds of its type', () => {
    assert.deepEqual(errorsOf(yaml('bindings:', '  a: { type: kafka, kind: server }')), [
      'kgate.yaml:2:27 bindings.a.kind: unknown kind "server" for type kafka; known kinds: client, cache_server, cache_client',
    ]);
  });

  it('requires an exit on a cache client without routes', () => {
    assert.deepEqual(errorsOf(yaml('bindings:', '  cache: { type: kafka, kind: cache_client }')), [
      'kgate.yaml:2:3 bindings.cache.exit: is required when there are no routes',
    ]);
  });

  it('explains a port that fits none of its forms, and checks the form that fits', () => {
    const text = yaml(
      'bindings:',
      '  a: { type: tcp, kind: server, options: { port: true }, exit: b }',
      '  b: { type: tcp, kind: server, options: { port: [7114, "80-x", 70000] }, exit: c }',
      '  c: { type: tcp, kind: client }',
    );
    assert.deepEqual(errorsOf(text), [
      'kgate.yaml:2:50 bindings.a.options.port: must be an integer, a string or an array',
      'kgate.yaml:3:57 bindings.b.options.port[1]: must be a port number or a range like "8080-8089"',
      'kgate.yaml:3:65 bindings.b.options.port[2]: must be at most 65535',
    ]);
  });

  it('rejects produce settings on a fetch route', () => {
    const text = yaml(
      'bindings:',
      '  api:',
      '    type: http-kafka',
      '    kind: proxy',
      '    routes:',
      '      - exit: cache',
      '        with: { capability: fetch, topic: items, reply-to: replies }',
      '  cache: { type: kafka, kind: cache_client, exit: cache }',
    );
    assert.deepEqual(errorsOf(text), [
      'kgate.yaml:7:50 bindings.api.routes[0].with.reply-to: is not allowed when capability is fetch',
      'kgate.yaml:8:51 bindings.cache.exit: exit cycle cache -> cache',
    ]);
  });

  it('reports every problem of a file at once, in file order', () => {
    const text = yaml(
      'name: broken',
      'bindings:',
      '  kafka_cache_server: { type: kafka, kind: cache_server, exit: kafka_clinet }',
      '  kafka_client:',
      '    type: kafka',
      '    kind: client',
      '    options:',
      '      servers: [ "${{env.KAFKA_BOOTSTRAP_SERVER}}" ]',
      '      sasl: { mechanism: md5, username: u }',
      '  other: { type: kafka, kind: server }',
    );
    assert.deepEqual(errorsOf(text), [
      'kgate.yaml:3:64 bindings.kafka_cache_server.exit: no binding named "kafka_clinet"; did you mean "kafka_client"?',
      'kgate.yaml:8:18 bindings.kafka_client.options.servers[0]: environment variable KAFKA_BOOTSTRAP_SERVER is not set',
      'kgate.yaml:9:7 bindings.kafka_client.options.sasl.password: is required',
      'kgate.yaml:9:26 bindings.kafka_client.options.sasl.mechanism: must be one of plain, scram-sha-256, scram-sha-512, oauthbearer',
      'kgate.yaml:10:31 bindings.other.kind: unknown kind "server" for type kafka; known kinds: client, cache_server, cache_client',
    ]);
  });

  it('says once that a variable is unset rather than also that its placeholder is malformed', () => {
    const text = yaml('bindings:', ...KAFKA_CLIENT, '    options:', '      servers: [ "${{env.BROKER}}" ]');
    assert.deepEqual(errorsOf(text), [
      'kgate.yaml:6:18 bindings.kafka_client.options.servers[0]: environment variable BROKER is not set',
    ]);
  });

  it('reports an empty file and a file that is not a mapping', () => {
    assert.deepEqual(errorsOf(''), ['kgate.yaml:1:1 file is empty; expected name and bindings']);
    assert.deepEqual(errorsOf('- a\n'), ['kgate.yaml:1:1 must be a mapping with name and bindings']);
  });

  it('reports a binding name that breaks the naming rule at the name', () => {
    assert.deepEqual(errorsOf(yaml('bindings:', '  "1st": { type: tcp, kind: client }')), [
      'kgate.yaml:2:3 bindings: name "1st" must start with a letter and contain only letters, digits, ".", "_" and "-"',
    ]);
  });

  it('reports an unreadable file without a position', async () => {
    await assert.rejects(loadConfigFile('/nonexistent/kgate.yaml'), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /^kgate\.yaml: cannot read file: ENOENT/);
      assert.equal(error.diagnostics[0]?.line, 0);
      return true;
    });
  });
});

describe('config warnings', () => {
  it('accepts Zilla sections kgate does not implement, with a warning each', () => {
    const config = load(
      yaml(
        'name: zilla',
        'telemetry:',
        '  metrics: [grpc.duration]',
        'guards: {}',
        'bindings:',
        '  tcp: { type: tcp, kind: client }',
      ),
    );
    assert.deepEqual(config.warnings.map(formatDiagnostic), [
      'kgate.yaml:3:13 telemetry.metrics[0]: kgate has no grpc bindings, so grpc.duration is never collected',
    ]);
  });

  it('warns about other Zilla features kgate accepts but does not act on', () => {
    const config = load(
      yaml(
        'bindings:',
        '  tls: { type: tls, kind: client, exit: tcp }',
        '  tcp: { type: tcp, kind: client, routes: [ { when: [ { cidr: 10.0.0.0/8 } ] } ] }',
      ),
    );
    assert.deepEqual(config.warnings.map(formatDiagnostic), [
      'kgate.yaml:3:35 bindings.tcp.routes: kgate does not restrict tcp client destinations, ignored',
    ]);
    assert.deepEqual(config.bindings.get('tcp')?.routes, []);
  });
});

describe('environment substitution', () => {
  // The servers the kafka client connects to, as it reads them from the loaded options.
  const config = (servers: string, env: NodeJS.ProcessEnv) =>
    clientBindingOptions(
      load(
        yaml('bindings:', ...KAFKA_CLIENT, '    options:', `      servers: [ ${servers} ]`),
        env,
      ).bindings.get('kafka_client')?.options,
    ).servers;

  it('replaces a whole value', () => {
    assert.deepEqual(config('"${{env.BROKER}}"', { BROKER: 'kafka:9092' }), ['kafka:9092']);
  });

  it('replaces part of a value, several times, with optional spaces inside the braces', () => {
    assert.deepEqual(
      config('"${{env.HOST}}-${{ env.ZONE }}:${{env.PORT}}"', { HOST: 'kafka', ZONE: 'eu', PORT: '9092' }),
      ['kafka-eu:9092'],
    );
  });

  it('splits a comma-separated broker list', () => {
    assert.deepEqual(config('"${{env.BROKERS}}"', { BROKERS: 'a:9092, b:9092' }), ['a:9092', 'b:9092']);
  });

  it('validates the substituted value', () => {
    assert.deepEqual(
      errorsOf(yaml('bindings:', ...KAFKA_CLIENT, '    options:', '      servers: [ "${{env.BROKER}}" ]'), {
        BROKER: 'no-port',
      }),
      ['kgate.yaml:6:18 bindings.kafka_client.options.servers[0]: must be host:port'],
    );
  });

  it('types an unquoted whole-value substitution like Zilla, keeping quoted ones strings', () => {
    const text = yaml(
      'bindings:',
      '  tcp:',
      '    type: tcp',
      '    kind: client',
      '    options:',
      '      host: "${{env.PORT}}"',
      '      port: ${{env.PORT}}',
    );
    assert.deepEqual(load(text, { PORT: '9092' }).bindings.get('tcp')?.options, { host: '9092', port: 9092 });
  });

  it('leaves request templates alone', () => {
    const text = yaml(
      'bindings:',
      '  api:',
      '    type: http-kafka',
      '    kind: proxy',
      '    routes:',
      '      - when: [ { method: GET, path: "/items/{id}" } ]',
      '        exit: cache',
      '        with: { capability: fetch, topic: items, filters: [ { key: "${params.id}" } ] }',
      '  cache: { type: kafka, kind: cache_client, exit: server }',
      '  server: { type: kafka, kind: cache_server, exit: client }',
      '  client: { type: kafka, kind: client }',
    );
    assert.deepEqual(load(text).bindings.get('api')?.routes, [
      {
        when: [{ method: 'GET', path: '/items/{id}' }],
        exit: 'cache',
        with: { capability: 'fetch', topic: 'items', filters: [{ key: '${params.id}' }] },
      },
    ]);
  });
});

describe('loaded configuration', () => {
  it('loads the seed example with its environment set', async () => {
    const config = await loadConfigFile(new URL('seed.yaml', examples).pathname, SEED_ENV);
    assert.equal(config.name, 'example');
    assert.deepEqual(config.warnings, []);
    assert.deepEqual(
      [...config.bindings.values()],
      [
        {
          name: 'kafka_cache_client',
          type: 'kafka',
          kind: 'cache_client',
          options: {},
          routes: [],
          exit: 'kafka_cache_server',
        },
        {
          name: 'kafka_cache_server',
          type: 'kafka',
          kind: 'cache_server',
          options: { bootstrap: ['items-responses'] },
          routes: [],
          exit: 'kafka_client',
        },
        {
          name: 'kafka_client',
          type: 'kafka',
          kind: 'client',
          options: {
            servers: ['localhost:9092'],
            sasl: { mechanism: 'scram-sha-256', username: 'user', password: 'secret' },
          },
          routes: [],
        },
      ],
    );
  });

  it('rejects the seed example without its environment', async () => {
    await assert.rejects(loadConfigFile(new URL('seed.yaml', examples).pathname, {}), {
      message: [
        'seed.yaml:9:18 bindings.kafka_client.options.servers[0]: environment variable KAFKA_BOOTSTRAP_SERVER is not set',
        'seed.yaml:10:51 bindings.kafka_client.options.sasl.username: environment variable SASL_USERNAME is not set',
        'seed.yaml:10:87 bindings.kafka_client.options.sasl.password: environment variable SASL_PASSWORD is not set',
      ].join('\n'),
    });
  });

  it('loads the demo example', async () => {
    const config = await loadConfigFile(new URL('demo.yaml', examples).pathname, {
      KAFKA_BOOTSTRAP_SERVER: 'localhost:9092',
      KGATE_DEMO_PORT: '7114',
    });
    assert.deepEqual(config.warnings, []);
    assert.deepEqual(config.bindings.get('kafka_client')?.options, { servers: ['localhost:9092'] });
    assert.deepEqual(config.bindings.get('north_tcp_server')?.options, { host: '127.0.0.1', port: 7114 });
    assert.deepEqual(config.bindings.get('kafka_cache_server')?.options, { bootstrap: ['items'] });
  });

  it('loads the Zilla example with a warning only for telemetry attributes', async () => {
    const config = await loadConfigFile(new URL('zilla-http-kafka.yaml', examples).pathname, {
      KAFKA_BOOTSTRAP_SERVER: 'localhost:9092',
    });
    assert.deepEqual(config.warnings.map(formatDiagnostic), [
      'zilla-http-kafka.yaml:9:3 telemetry.attributes: Zilla gives these to otlp exporters as resource attributes (its prometheus and stdout exporters do not use them); kgate has no otlp exporter, so they appear nowhere',
    ]);
    assert.deepEqual(
      [...config.bindings.values()].map((b) => `${b.name} ${b.type}.${b.kind}`),
      [
        'north_tcp_server tcp.server',
        'north_http_server http.server',
        'north_http_kafka_mapping http-kafka.proxy',
        'north_sse_server sse.server',
        'north_sse_kafka_mapping sse-kafka.proxy',
        'north_kafka_cache_client kafka.cache_client',
        'south_kafka_cache_server kafka.cache_server',
        'south_kafka_client kafka.client',
      ],
    );
  });

  it('defaults the name to kgate', () => {
    assert.equal(load(yaml('bindings:', '  tcp: { type: tcp, kind: client }')).name, 'kgate');
  });

  it('follows YAML aliases, locating problems inside one at the alias', () => {
    const text = yaml(
      'bindings:',
      '  a: &tcp { type: tcp, kind: client, options: { port: 1 } }',
      '  b: *tcp',
      '  c: { type: tcp, kind: server, options: &bad { port: nope }, exit: a }',
      '  d: { type: tcp, kind: server, options: *bad, exit: a }',
    );
    assert.deepEqual(errorsOf(text), [
      'kgate.yaml:4:55 bindings.c.options.port: must be a port number or a range like "8080-8089"',
      'kgate.yaml:5:42 bindings.d.options.port: must be a port number or a range like "8080-8089"',
    ]);
  });

  it('lists the binding types and kinds from the schema', () => {
    assert.deepEqual(Object.fromEntries(knownBindingTypes()), {
      kafka: ['client', 'cache_server', 'cache_client'],
      tcp: ['server', 'client'],
      tls: ['server', 'client'],
      http: ['server', 'client'],
      sse: ['server'],
      'http-kafka': ['proxy'],
      'sse-kafka': ['proxy'],
      'http-filesystem': ['proxy'],
      filesystem: ['server'],
      echo: ['server'],
      fan: ['server'],
    });
  });

  it('reads a file from disk', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kgate-config-'));
    try {
      const file = join(dir, 'kgate.yaml');
      await writeFile(file, yaml('name: disk', 'bindings:', '  tcp: { type: tcp, kind: client }'));
      const config = await loadConfigFile(file, {});
      assert.equal(config.file, file);
      assert.equal(config.name, 'disk');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
