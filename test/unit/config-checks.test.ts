import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { checkBindings } from '../../src/bindings/config-checks.ts';
import { defaultRegistry } from '../../src/bindings/index.ts';
import { ConfigError, parseConfig, type ConfigDiagnostic } from '../../src/config/index.ts';
import { Engine } from '../../src/engine/engine.ts';

// `kgate validate` is the truth about `kgate start`: each kind of config below passes the schema
// and the reference checks, and starting it fails for a config reason. Loaded with the bindings'
// own checks (what validate and start run), each is refused with the place in the file; loaded
// without them and started, each fails, so the two agree.

const TAIL = `  north: { type: kafka, kind: cache_client, exit: cache }
  cache: { type: kafka, kind: cache_server, exit: south }
  south: { type: kafka, kind: client, options: { servers: ["127.0.0.1:1"] } }
`;

function config(lines: string): string {
  return `name: t\nbindings:\n  tcp: { type: tcp, kind: server, options: { host: 127.0.0.1, port: 0 }, exit: http }\n${lines}${TAIL}`;
}

function refusal(yaml: string): ConfigDiagnostic {
  try {
    parseConfig(yaml, 'kgate.yaml', {}, { check: checkBindings });
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    const [first] = error.diagnostics;
    assert.ok(first !== undefined);
    return first;
  }
  assert.fail('the config was accepted');
}

async function startFails(yaml: string, reason: RegExp): Promise<void> {
  const engine = new Engine(parseConfig(yaml, 'kgate.yaml', {}), defaultRegistry(), {
    logger: pino({ level: 'silent' }),
    stateDir: '/nonexistent/kgate-config-checks',
  });
  await assert.rejects(
    async () => {
      try {
        await engine.start();
      } finally {
        await engine.stop(1_000);
      }
    },
    (error: unknown) => reason.test(String(error instanceof Error ? error.message : error)),
  );
}

const CASES: readonly {
  readonly kind: string;
  readonly yaml: string;
  readonly at: readonly [number, number];
  readonly path: string;
  readonly message: RegExp;
  /** What start says, when it says it in other words. */
  readonly start?: RegExp;
}[] = [
  {
    kind: 'an exit of a kind that cannot take what the binding sends it',
    yaml: config('  http: { type: http, kind: server, exit: north }\n'),
    at: [4, 43],
    path: 'bindings.http.exit',
    message: /exit north \(kafka cache_client\) does not serve HTTP requests/,
  },
  {
    kind: "a fan's exit that cannot take the stream of its clients",
    yaml: config('  http: { type: fan, kind: server, exit: north }\n'),
    at: [4, 42],
    path: 'bindings.http.exit',
    message: /exit north \(kafka cache_client\) does not accept the stream of a fan/,
  },
  {
    kind: "a route's with that does not compile (a template naming a parameter the path does not capture)",
    yaml: config(
      [
        '  http: { type: http, kind: server, exit: rest }',
        '  rest:',
        '    type: http-kafka',
        '    kind: proxy',
        '    routes:',
        '      - when: [{ method: GET, path: "/items/{id}" }]',
        '        exit: north',
        '        with: { capability: fetch, topic: items, filters: [{ key: "${params.nope}" }] }',
        '',
      ].join('\n'),
    ),
    at: [11, 67],
    path: 'bindings.rest.routes[0].with.filters[0].key',
    message: /\$\{params\.nope\} is not a path parameter/,
  },
  {
    kind: 'an option value the schema admits that means nothing (an empty port range)',
    yaml: `name: t\nbindings:\n  tcp: { type: tcp, kind: server, options: { host: 127.0.0.1, port: "9-8" }, exit: http }\n  http: { type: http, kind: server, exit: rest }\n  rest: { type: http-kafka, kind: proxy, routes: [{ when: [{ path: /x }], exit: north, with: { capability: fetch, topic: items } }] }\n${TAIL}`,
    at: [3, 69],
    path: 'bindings.tcp.options.port',
    message: /port range 9-8 is empty/,
  },
  {
    kind: 'a kind the schema admits so that Zilla files load, but kgate cannot run',
    yaml: config(
      '  http: { type: http, kind: server, exit: rest }\n  rest: { type: http-kafka, kind: proxy, routes: [{ when: [{ path: /x }], exit: north, with: { capability: fetch, topic: items } }] }\n  hc: { type: http, kind: client, exit: tc }\n  tc: { type: tcp, kind: client }\n',
    ),
    at: [6, 27],
    path: 'bindings.hc.kind',
    message: /cannot run an http client/,
    start: /type http kind client is not available/,
  },
];

describe('validate refuses what start refuses', () => {
  for (const { kind, yaml, at, path, message, start } of CASES) {
    it(kind, async () => {
      const diagnostic = refusal(yaml);
      assert.deepEqual([diagnostic.line, diagnostic.column], at);
      assert.equal(diagnostic.path, path);
      assert.match(diagnostic.message, message);
      await startFails(yaml, start ?? message);
    });
  }

  it('refuses the other route and option checks start makes, each where it is', () => {
    const route = (w: string): string =>
      config(
        `  http: { type: http, kind: server, exit: rest }\n  rest:\n    type: http-kafka\n    kind: proxy\n    routes:\n      - when: [{ method: GET, path: /items }]\n        exit: north\n        with: ${w}\n`,
      );
    const cases: [string, string, RegExp][] = [
      [
        route('{ capability: fetch, topic: "bad topic" }'),
        'bindings.rest.routes[0].with.topic',
        /legal topic/,
      ],
      [
        route('{ capability: produce, topic: items, correlation-id: "${idempotencyKey}" }'),
        'bindings.rest.routes[0].with.correlation-id',
        /reply-to/,
      ],
      [
        config(
          '  http: { type: http, kind: server, exit: sse }\n  sse: { type: sse, kind: server, exit: ev }\n  ev: { type: sse-kafka, kind: proxy, routes: [{ when: [{ path: /ev }], exit: north, with: { topic: items, event: { id: "${base64(key)}" } } }] }\n',
        ),
        'bindings.ev.routes[0].with.event.id',
        /\$\{etag\}/,
      ],
      [
        config(
          '  http: { type: http, kind: server, options: { versions: [] }, exit: rest }\n  rest: { type: http-kafka, kind: proxy, routes: [{ when: [{ path: /x }], exit: north, with: { capability: fetch, topic: items } }] }\n',
        ),
        'bindings.http.options.versions',
        /no HTTP version/,
      ],
    ];
    for (const [yaml, path, message] of cases) {
      const diagnostic = refusal(yaml);
      assert.equal(diagnostic.path, path);
      assert.match(diagnostic.message, message);
      assert.ok(diagnostic.line > 0 && diagnostic.column > 0);
    }
  });

  it('accepts what starts', () => {
    const yaml = config(
      '  http: { type: http, kind: server, exit: rest }\n  rest: { type: http-kafka, kind: proxy, routes: [{ when: [{ method: GET, path: "/t/{topic}" }], exit: north, with: { capability: fetch, topic: "${params.topic}" } }] }\n',
    );
    assert.equal(parseConfig(yaml, 'kgate.yaml', {}, { check: checkBindings }).bindings.size, 6);
  });
});
