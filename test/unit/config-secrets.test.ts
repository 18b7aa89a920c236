import { strict as assert } from 'node:assert';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { isScalar, parseDocument, visit } from 'yaml';
import { ConfigError, parseConfig, Redactor } from '../../src/config/index.ts';
import type { Binding } from '../../src/engine/binding.ts';
import { createLogger } from '../../src/engine/logger.ts';
import { startTelemetry } from '../../src/telemetry/index.ts';
import { reservePort } from '../support/ports.ts';

const SECRET = 'hunter2-s3cret';
const yaml = (...lines: string[]): string => lines.join('\n') + '\n';

/** The ConfigError text for `text` with SECRET in the environment, or '' when it loads. */
function diagnostics(text: string, env: NodeJS.ProcessEnv = { SECRET }): string {
  try {
    parseConfig(text, 'kgate.yaml', env);
    return '';
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.message;
  }
}

describe('config diagnostics and substituted values', () => {
  it('never echoes a mapping under kind, which may hold a substituted password', () => {
    const text = yaml(
      'bindings:',
      '  kafka_client:',
      '    type: kafka',
      '    kind:',
      '      sasl: { mechanism: plain, username: alice, password: "${{env.SECRET}}" }',
    );
    assert.deepEqual(diagnostics(text).split('\n'), [
      'kgate.yaml:5:7 bindings.kafka_client.kind: must be a string',
      'kgate.yaml:5:7 bindings.kafka_client.kind: unknown kind (a mapping) for type kafka; known kinds: client, cache_server, cache_client',
    ]);
  });

  it('quotes the file text, not the value, for a substituted type, kind or exit', () => {
    const text = yaml(
      'bindings:',
      '  a: { type: "${{env.SECRET}}", kind: client }',
      '  b: { type: kafka, kind: "${{ env.SECRET }}" }',
      '  c: { type: tcp, kind: server, options: { port: 1 }, exit: "x-${{env.SECRET}}" }',
    );
    assert.deepEqual(diagnostics(text).split('\n'), [
      'kgate.yaml:2:14 bindings.a.type: unknown type "${{env.SECRET}}"; known types: kafka, tcp, tls, http, sse, http-kafka, sse-kafka, http-filesystem, filesystem, echo, fan',
      'kgate.yaml:3:27 bindings.b.kind: unknown kind "${{ env.SECRET }}" for type kafka; known kinds: client, cache_server, cache_client',
      'kgate.yaml:4:61 bindings.c.exit: no binding named "x-${{env.SECRET}}"',
    ]);
  });

  it('shows no substituted value in any diagnostic of the example configs, whatever scalar it replaces', async () => {
    const examples = new URL('../../examples/', import.meta.url);
    const env = {
      KAFKA_BOOTSTRAP_SERVER: 'localhost:9092',
      SASL_USERNAME: 'user',
      SASL_PASSWORD: 'password',
      KGATE_DEMO_PORT: '7114',
    };
    let checked = 0;
    for (const name of (await readdir(examples)).filter((n) => n.endsWith('.yaml'))) {
      const text = await readFile(new URL(name, examples), 'utf8');
      // Keys are never substituted; every value scalar is, in turn.
      let scalars = 0;
      visit(parseDocument(text), { Scalar: (key) => void (key !== 'key' && scalars++) });
      for (let target = 0; target < scalars; target++) {
        const doc = parseDocument(text);
        let index = 0;
        visit(doc, {
          Scalar(key, node) {
            if (key !== 'key' && index++ === target && isScalar(node)) node.value = '${{env.SECRET}}';
          },
        });
        const message = diagnostics(doc.toString(), { ...env, SECRET });
        assert.ok(!message.includes(SECRET), `${name}, scalar ${target}:\n${message}`);
        checked++;
      }
    }
    assert.ok(checked > 150, `${checked} variants checked`);
  });
});

describe('Redactor', () => {
  const redactor = new Redactor([
    { reference: '${{env.PASSWORD}}', value: SECRET },
    { reference: '${{env.HOST}}', value: 'broker.internal' },
    { reference: '${{env.URL}}', value: `admin:${SECRET}@broker.internal:9092` },
    { reference: '${{env.SHORT}}', value: 'ab' },
  ]);

  it('puts references back in text, longest value first, ignoring values too short to look for', () => {
    assert.equal(
      redactor.text(`invalid Kafka server "admin:${SECRET}@broker.internal:9092"; also ${SECRET} on abacus`),
      'invalid Kafka server "${{env.URL}}"; also ${{env.PASSWORD}} on abacus',
    );
  });

  it('also finds the entries of a list and the host of a host:port, which errors quote alone', () => {
    const brokers = new Redactor([
      { reference: '${{env.BROKERS}}', value: 'kafka-a.internal:9092,kafka-b.internal:9093' },
    ]);
    assert.equal(
      brokers.text('connection to kafka-b.internal:9093 failed: getaddrinfo ENOTFOUND kafka-b.internal'),
      'connection to ${{env.BROKERS}} failed: getaddrinfo ENOTFOUND ${{env.BROKERS}}',
    );
  });

  it('keeps a JSON line valid, redacting inside its strings only', () => {
    const line = `${JSON.stringify({ level: 50, port: 9092, msg: `cannot reach broker.internal`, err: { message: `"${SECRET}"` } })}\n`;
    const redacted = redactor.json(line);
    assert.ok(redacted.endsWith('\n'));
    assert.deepEqual(JSON.parse(redacted), {
      level: 50,
      port: 9092,
      msg: 'cannot reach ${{env.HOST}}',
      err: { message: '"${{env.PASSWORD}}"' },
    });
    const clean = '{"msg":"nothing here"}\n';
    assert.equal(redactor.json(clean), clean);
  });

  it('redacts an error and its cause', () => {
    const error = redactor.error(
      new Error(`binding k failed to start: ${SECRET}`, { cause: new Error(`at ${SECRET}`) }),
    );
    assert.equal(error.message, 'binding k failed to start: ${{env.PASSWORD}}');
    assert.equal((error.cause as Error).message, 'at ${{env.PASSWORD}}');
  });

  it('learns the substitutions of a loaded config, strings only', () => {
    const config = parseConfig(
      yaml(
        'bindings:',
        '  t:',
        '    type: tcp',
        '    kind: client',
        '    options:',
        '      host: "${{env.HOST}}"',
        '      port: ${{env.PORT}}',
      ),
      'kgate.yaml',
      { HOST: 'broker.internal', PORT: '9092' },
    );
    assert.deepEqual(config.substitutions, [{ reference: '${{env.HOST}}', value: 'broker.internal' }]);
  });
});

describe('output that may quote an option', () => {
  it('the logger puts references back in every line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kgate-secrets-'));
    try {
      const file = join(dir, 'log');
      const fd = openSync(file, 'w');
      const redactor = new Redactor();
      const logger = createLogger({ destination: fd, redactor });
      redactor.add([{ reference: '${{env.PASSWORD}}', value: SECRET }]);
      logger.error({ err: new Error(`invalid Kafka server "admin:${SECRET}@b:1"`) }, `failed: ${SECRET}`);
      logger.flush();
      await new Promise((resolve) => setTimeout(resolve, 50));
      closeSync(fd);
      const text = readFileSync(file, 'utf8');
      assert.ok(!text.includes(SECRET), text);
      const line = JSON.parse(text) as { msg: string; err: { message: string } };
      assert.equal(line.msg, 'failed: ${{env.PASSWORD}}');
      assert.equal(line.err.message, 'invalid Kafka server "admin:${{env.PASSWORD}}@b:1"');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('/status and /ready answer with references for the problems bindings report', async () => {
    const config = parseConfig(
      yaml(
        'bindings:',
        '  kafka_client: { type: kafka, kind: client, options: { servers: ["${{env.BROKER}}"] } }',
      ),
      'kgate.yaml',
      { BROKER: `${SECRET}.example:9092` },
    );
    const kafka: Binding & { connectionProblem(): Promise<string> } = {
      name: 'kafka_client',
      start: () => Promise.resolve(),
      stop: () => Promise.resolve(),
      connectionProblem: () => Promise.resolve(`Kafka not reachable at ${SECRET}.example:9092: ENOTFOUND`),
    };
    const port = await reservePort();
    const telemetry = await startTelemetry({
      config: {
        exporters: [
          {
            name: 'p',
            type: 'prometheus',
            endpoints: [{ scheme: 'http', host: '127.0.0.1', path: '/m', port }],
          },
        ],
      },
      metrics: new Registry(),
      readiness: { config, binding: () => kafka },
      logger: pino({ level: 'silent' }),
      probeTimeoutMs: 500,
    });
    try {
      for (const path of ['/status', '/ready']) {
        const body = await (await fetch(`http://127.0.0.1:${port}${path}`)).text();
        assert.ok(!body.includes(SECRET), body);
        assert.match(body, /Kafka not reachable at \$\{\{env\.BROKER\}\}: ENOTFOUND/);
      }
    } finally {
      await telemetry.stop();
    }
  });
});
