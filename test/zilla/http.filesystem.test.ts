import { strict as assert } from 'node:assert';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startExample, type ZillaExample } from './support.ts';

// Zilla's http.filesystem example: `/{path}` mapped onto a directory. Its README asks for
// /index.html; a parameter spans segments in Zilla, so files in subfolders are served too.

const INDEX =
  '<html>\n  <head>\n    <title>Welcome to Zilla!</title>\n  </head>\n  <body>\n    <h1>Welcome to Zilla!</h1>\n  </body>\n</html>\n';

let dir: string;
let kgate: ZillaExample;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kgate-zilla-http-filesystem-'));
  const www = join(dir, 'www');
  await mkdir(join(www, 'assets', 'css'), { recursive: true });
  await writeFile(join(www, 'index.html'), INDEX);
  await writeFile(join(www, 'assets', 'css', 'site.css'), 'h1 { color: teal }');
  kgate = await startExample('http.filesystem', { WWW_DIR: www }, join(dir, 'cache'));
});

after(async () => {
  await kgate?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('http.filesystem', () => {
  it('serves /index.html as the README shows', async () => {
    const res = await fetch(kgate.url('/index.html'));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(await res.text(), INDEX);
  });

  it('serves a file in a subfolder through /{path}', async () => {
    const res = await fetch(kgate.url('/assets/css/site.css'));
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/css/);
    assert.equal(await res.text(), 'h1 { color: teal }');
  });

  it('answers 404 for a file that is not there', async () => {
    const res = await fetch(kgate.url('/assets/missing.js'));
    assert.equal(res.status, 404);
    await res.arrayBuffer();
  });
});
