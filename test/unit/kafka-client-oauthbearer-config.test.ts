import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { clientBindingOptions } from '../../src/bindings/kafka/client/config.ts';
import { ConfigError, formatDiagnostic, parseConfig } from '../../src/config/index.ts';

const FILE = '/etc/kgate/kgate.yaml';
const yaml = (...lines: string[]): string => lines.join('\n') + '\n';

/** The oauthbearer example's shape: an inline guard whose credentials are the token. */
const ONEWAY = (credentials: string): string =>
  yaml(
    'guards:',
    '  authn_kafka:',
    '    type: inline',
    '    options:',
    `      ${credentials}`,
    'bindings:',
    '  client:',
    '    type: kafka',
    '    kind: client',
    '    options:',
    '      servers: [ "localhost:9092" ]',
    '      authorization:',
    '        authn_kafka:',
    '          credentials:',
    '            mechanism: oauthbearer',
    '            token: "{credentials}"',
  );

describe('kafka client SASL OAUTHBEARER options', () => {
  it('takes the token of an inline guard, as Zilla does, without a warning about the guard', () => {
    const config = parseConfig(ONEWAY('credentials: ${{env.KAFKA_SASL_TOKEN}}'), FILE, {
      KAFKA_SASL_TOKEN: 'header.payload.signature',
    });
    assert.deepEqual(config.warnings, []);
    const client = config.bindings.get('client');
    assert.ok(client);
    assert.deepEqual(clientBindingOptions(client.options, client.guards).sasl, {
      mechanism: 'OAUTHBEARER',
      token: 'header.payload.signature',
    });
  });

  it('takes a token from options.sasl, and refuses one without a token', () => {
    assert.deepEqual(clientBindingOptions({ sasl: { mechanism: 'oauthbearer', token: 't' } }).sasl, {
      mechanism: 'OAUTHBEARER',
      token: 't',
    });
    const errorsOf = (sasl: string): string[] => {
      try {
        parseConfig(
          yaml('bindings:', `  client: { type: kafka, kind: client, options: { sasl: ${sasl} } }`),
          FILE,
          {},
        );
      } catch (error) {
        assert.ok(error instanceof ConfigError);
        return error.diagnostics.map(formatDiagnostic);
      }
      assert.fail('expected a ConfigError');
    };
    assert.match(errorsOf('{ mechanism: oauthbearer }').join('\n'), /bindings\.client\.options\.sasl.*token/);
  });

  it('refuses an unknown mechanism and a token-less oauthbearer in authorization credentials, at validate', () => {
    const errorsOf = (credentials: string): string[] => {
      try {
        parseConfig(
          yaml(
            'bindings:',
            `  client: { type: kafka, kind: client, options: { authorization: { g: { credentials: ${credentials} } } } }`,
          ),
          FILE,
          {},
        );
      } catch (error) {
        assert.ok(error instanceof ConfigError);
        return error.diagnostics.map(formatDiagnostic);
      }
      assert.fail('expected a ConfigError');
    };
    assert.deepEqual(errorsOf('{ mechanism: scram-sha-1, username: u, password: p }'), [
      'kgate.yaml:2:99 bindings.client.options.authorization.g.credentials.mechanism: must be one of plain, scram-sha-256, scram-sha-512, oauthbearer',
    ]);
    assert.deepEqual(errorsOf('{ mechanism: oauthbearer }'), [
      'kgate.yaml:2:86 bindings.client.options.authorization.g.credentials: token is required with mechanism oauthbearer',
    ]);
  });

  it('refuses {credentials} with no inline guard to stand for, at validate', () => {
    assert.throws(
      () => parseConfig(ONEWAY('identity: someone'), FILE, {}),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.deepEqual(error.diagnostics.map(formatDiagnostic), [
          'kgate.yaml:16:20 bindings.client.options.authorization.authn_kafka.credentials.token: {credentials} stands for the credentials of inline guard authn_kafka, which has none',
        ]);
        return true;
      },
    );
  });
});
