import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { ConfigError, formatDiagnostic, parseConfig } from '../../src/config/index.ts';

// What `validate` says about guards: every reference it could not resolve at start is refused
// with file:line:col, and a guarded route on a binding that would not enforce it too.

const yaml = (...lines: string[]): string => lines.join('\n') + '\n';

const GUARDS = [
  'guards:',
  '  jwt0:',
  '    type: jwt',
  '    options:',
  '      keys: [ { kty: RSA, kid: example, alg: RS256, n: AQAB, e: AQAB } ]',
  '      attributes: { tenant: org.tenant }',
];

const CHAIN = [
  '  cache: { type: kafka, kind: cache_client, exit: server }',
  '  server: { type: kafka, kind: cache_server, exit: client }',
  '  client: { type: kafka, kind: client }',
];

function problems(text: string): string[] {
  try {
    parseConfig(text, 'kgate.yaml', {});
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.diagnostics.map(formatDiagnostic);
  }
  return [];
}

describe('config guards', () => {
  it('loads guards, authorization and guarded routes with no warning', () => {
    const config = parseConfig(
      yaml(
        ...GUARDS,
        'bindings:',
        '  http:',
        '    type: http',
        '    kind: server',
        '    options: { authorization: { jwt0: { credentials: { headers: { authorization: "Bearer {credentials}" } } } } }',
        '    routes: [ { guarded: { jwt0: [ read ] }, exit: sse } ]',
        '  sse: { type: sse, kind: server, exit: proxy }',
        '  proxy: { type: sse-kafka, kind: proxy, routes: [ { exit: cache, with: { topic: "t-${guarded[\'jwt0\'].identity}", filters: [ { key: "${guarded[\'jwt0\'].attributes.tenant}" } ] } } ] }',
        ...CHAIN,
      ),
      'kgate.yaml',
      {},
    );
    assert.deepEqual(config.warnings, []);
    assert.equal(config.guards?.get('jwt0')?.type, 'jwt');
    assert.deepEqual(config.bindings.get('http')?.routes[0]?.guarded, { jwt0: ['read'] });
  });

  it('refuses references to guards, attributes and expressions start could not resolve', () => {
    assert.deepEqual(
      problems(
        yaml(
          ...GUARDS,
          'bindings:',
          '  http:',
          '    type: http',
          '    kind: server',
          '    options: { authorization: { jwt1: { credentials: { query: { access_token: "{credentials}" } } } } }',
          '    routes: [ { guarded: { jtw0: [ read ] }, exit: sse } ]',
          '  sse: { type: sse, kind: server, exit: proxy }',
          '  proxy: { type: sse-kafka, kind: proxy, routes: [ { exit: cache, with: { topic: "${guarded[\'other\'].identity}", filters: [ { key: "${guarded[\'jwt0\'].attributes.org}" }, { key: "${guarded.jwt0.identity}" } ] } } ] }',
          '  files: { type: http-filesystem, kind: proxy, routes: [ { exit: fs, with: { path: "${guarded[\'jwt0\'].identity}" } } ] }',
          '  fs: { type: filesystem, kind: server, options: { location: /tmp/kgate-none } }',
          '  tcp: { type: tcp, kind: server, options: { port: 8080 }, routes: [ { guarded: { jwt0: [] }, exit: http } ] }',
          ...CHAIN,
        ),
      ),
      [
        'kgate.yaml:11:39 bindings.http.options.authorization.jwt1: no guard named "jwt1"; did you mean "jwt0"?',
        'kgate.yaml:12:34 bindings.http.routes[0].guarded.jtw0: no guard named "jtw0"',
        `kgate.yaml:14:82 bindings.proxy.routes[0].with.topic: \${guarded['other'].identity}: no guard named "other"`,
        `kgate.yaml:14:132 bindings.proxy.routes[0].with.filters[0].key: \${guarded['jwt0'].attributes.org}: guard jwt0 has no attribute "org"`,
        "kgate.yaml:14:178 bindings.proxy.routes[0].with.filters[1].key: ${guarded.jwt0.identity} is not a guard expression kgate knows: write ${guarded['<guard>'].identity} or ${guarded['<guard>'].attributes.<name>}",
        "kgate.yaml:15:84 bindings.files.routes[0].with.path: ${guarded['jwt0'].identity}: http-filesystem bindings do not resolve guard expressions (http-kafka and sse-kafka do)",
        'kgate.yaml:17:81 bindings.tcp.routes[0].guarded: tcp bindings do not enforce guarded routes (only http, sse, http-kafka, sse-kafka, http-filesystem do); kgate refuses the config rather than leave the route open',
      ],
    );
  });

  it('refuses authorization options that are not in Zilla shape', () => {
    const found = problems(
      yaml(
        ...GUARDS,
        'bindings:',
        '  http: { type: http, kind: server, options: { authorization: { jwt0: { credentials: { headers: { authorization: Bearer } } } } }, exit: sse }',
        '  sse: { type: sse, kind: server, exit: proxy }',
        '  proxy: { type: sse-kafka, kind: proxy, routes: [ { exit: cache, with: { topic: t } } ] }',
        ...CHAIN,
      ),
    );
    assert.equal(found.length, 1, found.join('\n'));
    assert.match(found[0] ?? '', /must hold `\{credentials\}` once/);
  });

  it('refuses a guard without keys and a keys URL that is not http(s)', () => {
    const found = problems(
      yaml(
        'guards:',
        '  a: { type: jwt, options: { issuer: x } }',
        '  b: { type: jwt, options: { keys: "file:///etc/jwks.json" } }',
        'bindings:',
        ...CHAIN,
      ),
    );
    assert.equal(found.length, 2, found.join('\n'));
    assert.match(found[0] ?? '', /kgate\.yaml:2:.* guards\.a\.options/);
    assert.match(found[1] ?? '', /kgate\.yaml:3:.* guards\.b\.options\.keys/);
  });

  it('accepts inline guards for kafka clients, and refuses one where a request must be verified', () => {
    const found = problems(
      yaml(
        'guards:',
        '  sasl: { type: inline, options: { identity: alice, credentials: secret } }',
        'bindings:',
        '  http: { type: http, kind: server, options: { authorization: { sasl: { credentials: { query: { t: "{credentials}" } } } } }, exit: sse }',
        '  sse: { type: sse, kind: server, exit: proxy }',
        '  proxy: { type: sse-kafka, kind: proxy, routes: [ { exit: cache, with: { topic: t } } ] }',
        '  cache: { type: kafka, kind: cache_client, exit: server }',
        '  server: { type: kafka, kind: cache_server, exit: client }',
        '  client:',
        '    type: kafka',
        '    kind: client',
        '    options: { authorization: { sasl: { credentials: { mechanism: plain, username: "{identity}", password: "{credentials}" } } } }',
      ),
    );
    assert.deepEqual(found, [
      'kgate.yaml:4:71 bindings.http.options.authorization.sasl: guard sasl is of type inline, which verifies no request (a jwt guard does)',
    ]);
  });
});
