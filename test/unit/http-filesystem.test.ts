import { strict as assert } from 'node:assert';
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { createFilesystemServerBinding } from '../../src/bindings/filesystem/server.ts';
import { createHttpServerBinding } from '../../src/bindings/http/server.ts';
import { contentTypeOf } from '../../src/bindings/http-filesystem/content-types.ts';
import { createHttpFilesystemProxyBinding } from '../../src/bindings/http-filesystem/proxy.ts';
import { createTcpServerBinding, type TcpServerBinding } from '../../src/bindings/tcp/server.ts';
import { ConfigError, loadConfigFile, parseConfig } from '../../src/config/index.ts';
import { Engine } from '../../src/engine/engine.ts';
import { BindingRegistry } from '../../src/engine/registry.ts';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

let dir: string;
let engine: Engine;
let port: number;

/** Raw request paths: fetch would normalize away the `..` segments under test. */
function send(method: string, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString(),
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kgate-http-filesystem-'));
  const site = join(dir, 'site');
  await mkdir(join(site, 'docs', 'sub'), { recursive: true });
  await writeFile(join(site, 'index.html'), '<h1>home</h1>');
  await writeFile(join(site, 'style.css'), 'body{}');
  await writeFile(join(site, 'docs', 'index.html'), '<h1>docs</h1>');
  await writeFile(join(site, 'docs', 'sub', 'notes.txt'), 'notes');
  await mkdir(join(site, 'assets', 'js'), { recursive: true });
  await writeFile(join(site, 'assets', 'js', 'app.js'), 'run()');
  await writeFile(join(dir, 'secret.txt'), 'TOP SECRET CONTENT');
  await symlink(join(dir, 'secret.txt'), join(site, 'leak.txt'));
  await symlink(dir, join(site, 'parent'));
  await mkdir(join(site, '.git'));
  await mkdir(join(site, 'docs', '.hidden'));
  await writeFile(join(site, '.env'), 'DB_PASSWORD=hunter2');
  await writeFile(join(site, '.git', 'config'), '[core] DB_PASSWORD=hunter2');
  await writeFile(join(site, 'docs', '.hidden', 'notes.txt'), 'DB_PASSWORD=hunter2');
  await symlink('.env', join(site, 'public.txt'));
  const configFile = join(dir, 'kgate.yaml');
  const config = parseConfig(
    [
      'bindings:',
      '  tcp: { type: tcp, kind: server, options: { host: 127.0.0.1, port: 0 }, exit: http }',
      '  http: { type: http, kind: server, exit: files }',
      '  files:',
      '    type: http-filesystem',
      '    kind: proxy',
      '    routes:',
      '      - { when: [ { path: / } ], exit: site, with: { path: index.html } }',
      '      - { when: [ { path: /docs/* } ], exit: site }',
      // First match wins, and `{path}` spans segments: the more specific route comes first.
      '      - { when: [ { path: "/open/{name}" } ], exit: open, with: { path: "${params.name}" } }',
      '      - { when: [ { path: "/{path}" } ], exit: site, with: { path: "${params.path}" } }',
      '  site: { type: filesystem, kind: server, options: { location: site } }',
      '  open: { type: filesystem, kind: server, options: { location: site, dotfiles: allow } }',
    ].join('\n'),
    configFile,
    {},
  );
  const registry = new BindingRegistry()
    .register('tcp', 'server', createTcpServerBinding)
    .register('http', 'server', createHttpServerBinding)
    .register('http-filesystem', 'proxy', createHttpFilesystemProxyBinding)
    .register('filesystem', 'server', (context) =>
      createFilesystemServerBinding({ ...context, configFile } as typeof context),
    );
  engine = new Engine(config, registry, { logger: pino({ level: 'silent' }), stateDir: join(dir, 'state') });
  await engine.start();
  const first = (engine.binding('tcp') as TcpServerBinding).ports[0];
  assert.ok(first !== undefined);
  port = first;
});

after(async () => {
  await engine?.stop(5_000);
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('http-filesystem proxy over a filesystem server', () => {
  it('serves index.html for / and files with a content type by extension', async () => {
    const home = await send('GET', '/');
    assert.equal(home.status, 200);
    assert.equal(home.body, '<h1>home</h1>');
    assert.equal(home.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(home.headers['content-length'], '13');
    const css = await send('GET', '/style.css');
    assert.equal(css.status, 200);
    assert.equal(css.body, 'body{}');
    assert.equal(css.headers['content-type'], 'text/css; charset=utf-8');
  });

  it('serves nested paths on a route without with, and index.html for a path ending in /', async () => {
    assert.equal((await send('GET', '/docs/sub/notes.txt')).body, 'notes');
    assert.equal((await send('GET', '/docs/')).body, '<h1>docs</h1>');
    assert.equal((await send('GET', '/docs')).status, 404);
  });

  it('serves subfolders through a parameter, which spans segments as in Zilla', async () => {
    const app = await send('GET', '/assets/js/app.js');
    assert.equal(app.status, 200);
    assert.equal(app.body, 'run()');
    // Each segment a parameter spans is still checked as a file segment.
    for (const path of ['/assets/.git/config', '/assets/js%2fapp.js', '/assets/..%2findex.html'])
      assert.equal((await send('GET', path)).status, 404, path);
  });

  it('answers HEAD with the headers only', async () => {
    const head = await send('HEAD', '/style.css');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assert.equal(head.headers['content-length'], '6');
    assert.ok(typeof head.headers['etag'] === 'string');
  });

  it('answers 304 to a matching If-None-Match, 200 to a stale one', async () => {
    const first = await send('GET', '/style.css');
    const etag = first.headers['etag'];
    assert.ok(typeof etag === 'string');
    assert.equal(first.headers['cache-control'], 'no-cache');
    const again = await send('GET', '/style.css', { 'If-None-Match': `"other", W/${etag}` });
    assert.equal(again.status, 304);
    assert.equal(again.body, '');
    assert.equal(again.headers['etag'], etag);
    assert.equal((await send('GET', '/style.css', { 'If-None-Match': '"other"' })).status, 200);
    await writeFile(join(dir, 'site', 'style.css'), 'body{color:red}');
    const changed = await send('GET', '/style.css', { 'If-None-Match': etag });
    assert.equal(changed.status, 200);
    assert.equal(changed.body, 'body{color:red}');
    assert.notEqual(changed.headers['etag'], etag);
  });

  it('never serves anything outside the location', async () => {
    for (const path of [
      '/../secret.txt',
      '/%2e%2e/secret.txt',
      '/%2e%2e%2fsecret.txt',
      '/..%2F..%2Fetc%2Fpasswd',
      '/%2Fetc%2Fpasswd',
      '/docs/../../secret.txt',
      '/docs/%2e%2e/%2e%2e/secret.txt',
      '/leak.txt',
      '/parent/secret.txt',
      '/docs%2f..%2f..%2fsecret.txt',
      '/index.html%00.txt',
    ]) {
      const answer = await send('GET', path);
      assert.equal(answer.status, 404, path);
      assert.doesNotMatch(answer.body, /TOP SECRET|root:/, path);
    }
  });

  it('answers dotfiles as missing, also behind a link or in a directory, and serves the rest', async () => {
    for (const path of [
      '/.env',
      '/%2eenv',
      '/.git/config',
      '/docs/.hidden/notes.txt',
      '/docs/%2ehidden/notes.txt',
      '/public.txt',
    ]) {
      const answer = await send('GET', path);
      assert.equal(answer.status, 404, path);
      assert.doesNotMatch(answer.body, /hunter2/, path);
    }
    assert.equal((await send('GET', '/docs/sub/notes.txt')).body, 'notes');
    assert.equal((await send('GET', '/index.html')).status, 200);
  });

  it('refuses encoded separators in a path parameter and in the request path', async () => {
    // `%2f` must not turn a segment into a path into the location, the way
    // `/.kgate%2fcache%2f...` reached the LMDB files of the cache.
    for (const path of [
      '/.git%2fconfig',
      '/.git%2Fconfig',
      '/docs%2fsub%2fnotes.txt',
      '/docs%5csub%5cnotes.txt',
      '/docs/sub%2fnotes.txt',
      '/docs/sub%5Cnotes.txt',
      '/docs%2f.hidden%2fnotes.txt',
      '/%2e%2e%2fsite%2fdocs%2fsub%2fnotes.txt',
      '/index.html%00',
    ]) {
      const answer = await send('GET', path);
      assert.equal(answer.status, 404, path);
      assert.doesNotMatch(answer.body, /hunter2|notes$/, path);
    }
    // The same file through plain slashes, where a route takes them.
    assert.equal((await send('GET', '/docs/sub/notes.txt')).status, 200);
  });

  it('serves dotfiles where the filesystem allows them, still refusing escapes and ..', async () => {
    const env = await send('GET', '/open/.env');
    assert.equal(env.status, 200);
    assert.equal(env.body, 'DB_PASSWORD=hunter2');
    assert.equal((await send('GET', '/open/public.txt')).status, 200);
    for (const path of [
      '/open/.git%2fconfig',
      '/open/%2e%2e%2fsecret.txt',
      '/open/..%5csecret.txt',
      '/open/leak.txt',
    ]) {
      const answer = await send('GET', path);
      assert.equal(answer.status, 404, path);
      assert.doesNotMatch(answer.body, /hunter2|TOP SECRET/, path);
    }
  });

  it('answers 404 for missing files and 405 for other methods', async () => {
    assert.equal((await send('GET', '/missing.js')).status, 404);
    const post = await send('POST', '/index.html');
    assert.equal(post.status, 405);
    assert.equal(post.headers['allow'], 'GET, HEAD');
  });

  it('maps extensions to content types, unknown ones to octet-stream', () => {
    assert.equal(contentTypeOf('app.JS'), 'text/javascript; charset=utf-8');
    assert.equal(contentTypeOf('data.json'), 'application/json');
    assert.equal(contentTypeOf('logo.svg'), 'image/svg+xml');
    assert.equal(contentTypeOf('archive.bin'), 'application/octet-stream');
    assert.equal(contentTypeOf('README'), 'application/octet-stream');
  });
});

describe("a filesystem location holding kgate's own files", () => {
  let own: string;

  before(async () => {
    own = await realpath(await mkdtemp(join(tmpdir(), 'kgate-own-files-')));
    await mkdir(join(own, 'site'));
    await mkdir(join(own, 'etc'));
    await symlink(own, join(own, 'www'));
  });

  after(async () => {
    if (own !== undefined) await rm(own, { recursive: true, force: true });
  });

  const siteAt = (location: string): string =>
    `bindings:\n  site: { type: filesystem, kind: server, options: { location: ${JSON.stringify(location)} } }\n`;

  async function refusal(
    location: string,
    file: string,
    env: NodeJS.ProcessEnv = {},
  ): Promise<string | undefined> {
    await writeFile(file, siteAt(location));
    try {
      await loadConfigFile(file, env);
      return undefined;
    } catch (error) {
      assert.ok(error instanceof ConfigError, String(error));
      return error.message;
    }
  }

  it('is refused when the config is loaded: the config file or the cache kgate start would use', async () => {
    const file = join(own, 'kgate.yaml');
    // `location: .` published the config file and, at .kgate/cache/, every cached topic.
    assert.equal(
      await refusal('.', file),
      `kgate.yaml:2:64 bindings.site.options.location: the location contains kgate's config file ${file}; ` +
        'serve a directory that holds only the files to publish',
    );
    assert.match((await refusal('www', file)) ?? '', /the location contains kgate's config file/);
    assert.match(
      (await refusal('.kgate', file)) ?? '',
      new RegExp(`the location contains kgate's cache directory ${join(own, '.kgate', 'cache')}, `),
    );
    assert.match(
      (await refusal('.kgate/cache/x', file)) ?? '',
      /the location is inside kgate's cache directory/,
    );
    const elsewhere = join(own, 'etc', 'kgate.yaml');
    assert.match(
      (await refusal('../site', elsewhere, { KGATE_CACHE_DIR: join(own, 'site', 'cache') })) ?? '',
      /the location contains kgate's cache directory .*move the cache with --cache-dir$/,
    );
    assert.equal(await refusal('site', file), undefined);
    assert.equal(await refusal('../site', elsewhere), undefined);
    // A config built in code names a file only to resolve paths, and has a cache of its own.
    assert.doesNotThrow(() => parseConfig(siteAt('.'), join(own, 'built-in-code.yaml'), {}));
  });

  it('fails start when the cache directory it was given lies under the location', async () => {
    const file = join(own, 'etc', 'kgate.yaml');
    const config = parseConfig(siteAt('../site'), file, {});
    const started = new Engine(
      config,
      new BindingRegistry().register('filesystem', 'server', createFilesystemServerBinding),
      {
        logger: pino({ level: 'silent' }),
        stateDir: join(own, 'site', 'cache'),
      },
    );
    await assert.rejects(started.start(), {
      message:
        `binding site failed to start: the location contains kgate's cache directory ${join(own, 'site', 'cache')}, ` +
        'whose files hold every cached topic; serve a directory that holds only the files to publish, or move the cache with --cache-dir',
    });
    const elsewhere = new Engine(
      config,
      new BindingRegistry().register('filesystem', 'server', createFilesystemServerBinding),
      {
        logger: pino({ level: 'silent' }),
        stateDir: join(own, 'cache'),
      },
    );
    await elsewhere.start();
    await elsewhere.stop(1_000);
  });
});
