import { strict as assert } from 'node:assert';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
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
import { parseConfig } from '../../src/config/index.ts';
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
  await writeFile(join(dir, 'secret.txt'), 'TOP SECRET CONTENT');
  await symlink(join(dir, 'secret.txt'), join(site, 'leak.txt'));
  await symlink(dir, join(site, 'parent'));
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
      '      - { when: [ { path: "/{path}" } ], exit: site, with: { path: "${params.path}" } }',
      '  site: { type: filesystem, kind: server, options: { location: site } }',
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
