import { strict as assert } from 'node:assert';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError, formatDiagnostic, loadConfigFile, parseConfig } from '../../src/config/index.ts';

const CATALOGS = `catalogs:
  local:
    type: inline
    options:
      subjects:
        event:
          schema: '{"type":"record","name":"Event","fields":[{"name":"id","type":"string"}]}'
  registry:
    type: schema-registry
    options:
      url: http://localhost:8081
      context: default
`;

function bindings(clientTopic: string, request = ''): string {
  return `bindings:
  north_http_server:
    type: http
    kind: server
${request === '' ? '' : `    options:\n${request}`}    exit: north_kafka_cache_client
  north_kafka_cache_client:
    type: kafka
    kind: cache_client
    options:
      topics:
${clientTopic}    exit: south_kafka_cache_server
  south_kafka_cache_server:
    type: kafka
    kind: cache_server
    exit: south_kafka_client
  south_kafka_client:
    type: kafka
    kind: client
    options:
      servers: [localhost:9092]
`;
}

function problems(text: string, file = 'kgate.yaml'): string[] {
  try {
    parseConfig(text, file, {});
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.diagnostics.map(formatDiagnostic);
  }
  return [];
}

describe('config: catalogs and models', () => {
  it("loads Zilla's shapes: catalogs, topic models, http requests", () => {
    const text =
      CATALOGS +
      bindings(
        `        - name: events
          value:
            model: avro
            view: json
            catalog:
              registry:
                - strategy: topic
                  version: latest
        - name: items
          value:
            model: avro
            view: json
            catalog:
              local:
                - subject: event
`,
        `      requests:
        - path: /events
          method: POST
          content-type:
            - application/avro-binary
          content:
            model: avro
            catalog:
              registry:
                - strategy: encoded
`,
      );
    const config = parseConfig(text, 'kgate.yaml', {});
    assert.deepEqual(Object.keys(config.catalogs ?? {}), ['local', 'registry']);
    assert.deepEqual(
      config.warnings.map((w) => w.message),
      [],
    );
  });

  it('names the place of a model naming no catalog, a protobuf without record, a schema that does not compile', () => {
    const text =
      CATALOGS +
      bindings(`        - name: a
          value:
            model: avro
            catalog:
              regsitry:
                - strategy: topic
        - name: b
          value:
            model: protobuf
            catalog:
              local:
                - subject: event
        - name: c
          value:
            model: json
            catalog:
              local:
                - subject: event
        - name: d
          value:
            model: avro
            catalog:
              local:
                - subject: evnt
        - name: e
          value:
            model: avro
            catalog:
              local:
                - strategy: encoded
`);
    const found = problems(text);
    assert.deepEqual(found, [
      'kgate.yaml:28:17 bindings.north_kafka_cache_client.options.topics[0].value.catalog.regsitry: no catalog named "regsitry"; did you mean "registry"?',
      'kgate.yaml:34:19 bindings.north_kafka_cache_client.options.topics[1].value.catalog.local[0]: a protobuf model names its message type in `record`',
      found[2] ?? '',
      'kgate.yaml:46:19 bindings.north_kafka_cache_client.options.topics[3].value.catalog.local[0]: catalog "local" has no subject "evnt"; did you mean "event"?',
      'kgate.yaml:52:19 bindings.north_kafka_cache_client.options.topics[4].value.catalog.local[0]: strategy encoded reads the schema id values carry: catalog "local" is not a schema registry',
    ]);
    // An Avro schema is valid JSON but not a JSON Schema ajv compiles ("type": "record").
    assert.match(
      found[2] ?? '',
      /^kgate\.yaml:40:19 .*topics\[2\]\.value\.catalog\.local\[0\]: schema local\/event does not compile/,
    );
  });

  it('refuses shapes Zilla does not have, with their place', () => {
    const text =
      `catalogs:
  local:
    type: inline
    options:
      subjects:
        event:
          path: event.avsc
  registry:
    type: schema-registry
    options:
      url: localhost:8081
` +
      bindings(`        - name: a
          value:
            model: avro
            view: xml
            catalog:
              local:
                - version: 2
`);
    const found = problems(text);
    assert.ok(
      found.some((p) =>
        p.startsWith('kgate.yaml:7:11 catalogs.local.options.subjects.event: unknown property "path"'),
      ),
      found.join('\n'),
    );
    assert.ok(
      found.some((p) =>
        p.startsWith('kgate.yaml:11:12 catalogs.registry.options.url: must be an http:// or https:// URL'),
      ),
      found.join('\n'),
    );
    assert.ok(
      found.some((p) => p.includes('topics[0].value.view')),
      found.join('\n'),
    );
    assert.ok(
      found.some((p) => p.includes('topics[0].value.catalog.local[0].version')),
      found.join('\n'),
    );
  });

  it('takes transforms on a cache_server only, with field paths in their shape', () => {
    const onClient = problems(
      CATALOGS +
        bindings(`        - name: a
          transforms:
            - extract-key: \${message.value.id}
`),
    );
    assert.deepEqual(onClient, [
      'kgate.yaml:25:13 bindings.north_kafka_cache_client.options.topics[0].transforms: transforms apply when records are ingested: only on a kafka cache_server',
    ]);
    const text = (path: string): string =>
      bindings('        - name: a\n').replace(
        '    kind: cache_server\n',
        `    kind: cache_server\n    options:\n      topics:\n        - name: a\n          transforms:\n            - extract-headers:\n                status: ${path}\n`,
      );
    assert.deepEqual(problems(text('${message.value.status}')), []);
    const bad = problems(text('${message.value.a.b}'));
    assert.equal(bad.length, 1, bad.join('\n'));
    assert.match(
      bad[0] ?? '',
      /transforms\[0\]\.extract-headers\.status: must be \$\{message\.key\.<field>\} or/,
    );
  });

  describe('filesystem catalogs', () => {
    let dir: string;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'kgate-models-'));
      await writeFile(
        join(dir, 'request.proto'),
        'syntax = "proto3";\nmessage Request { string message = 1; int32 count = 2; }\n',
      );
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    const config = (path: string, record: string): string =>
      `catalogs:
  files:
    type: filesystem
    options:
      subjects:
        request:
          path: ${path}
` +
      bindings(`        - name: my-requests
          value:
            model: protobuf
            view: json
            catalog:
              files:
                - subject: request
                  record: ${record}
`);

    it('reads files beside the config and compiles them for the model', async () => {
      const file = join(dir, 'ok.yaml');
      await writeFile(file, config('request.proto', 'Request'));
      const loaded = await loadConfigFile(file, {});
      assert.equal(loaded.catalogs?.['files']?.type, 'filesystem');
    });

    it('names a missing file and a message type the file does not have', async () => {
      const missing = join(dir, 'missing.yaml');
      await writeFile(missing, config('nothing.proto', 'Request'));
      await assert.rejects(loadConfigFile(missing, {}), (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(
          error.message,
          /missing\.yaml:7:17 catalogs\.files\.options\.subjects\.request\.path: no file at .*nothing\.proto/,
        );
        return true;
      });
      const wrong = join(dir, 'wrong.yaml');
      await writeFile(wrong, config('request.proto', 'Reply'));
      await assert.rejects(loadConfigFile(wrong, {}), (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(
          error.message,
          /wrong\.yaml:\d+:\d+ .*catalog\.files\[0\]: schema files\/request has no protobuf message Reply/,
        );
        return true;
      });
    });
  });
});
