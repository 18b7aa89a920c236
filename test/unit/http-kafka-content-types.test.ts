import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import {
  contentTypePolicy,
  DEFAULT_CONTENT_TYPES,
  parseContentType,
  type Replaced,
} from '../../src/bindings/http-kafka/content-types.ts';
import { cpuTimed } from '../support/cpu-time.ts';

// Which stored content types an http-kafka route answers as they are: a record's content-type
// header is whatever its producer wrote, and a GET of the same origin must not become a page.

function policy(patterns: readonly string[] = DEFAULT_CONTENT_TYPES): {
  serve: (stored: string | undefined) => string | undefined;
  replaced: [Replaced, string][];
} {
  const replaced: [Replaced, string][] = [];
  const compiled = contentTypePolicy(patterns, 'with.content-types', (reason, stored) =>
    replaced.push([reason, stored]),
  );
  return { serve: (stored) => compiled.serve(stored), replaced };
}

describe('http-kafka content types', () => {
  it('answers JSON, text and binary types as stored, parameters included', () => {
    const { serve, replaced } = policy();
    assert.equal(serve('application/json'), 'application/json');
    assert.equal(serve('Application/JSON; charset=utf-8'), 'Application/JSON; charset=utf-8');
    assert.equal(serve('application/vnd.api+json'), 'application/vnd.api+json');
    assert.equal(
      serve('application/merge-patch+json;charset="utf-8"'),
      'application/merge-patch+json; charset="utf-8"',
    );
    assert.equal(serve('text/plain ;  charset=us-ascii ; '), 'text/plain; charset=us-ascii');
    assert.equal(serve('application/octet-stream'), 'application/octet-stream');
    // A record without a content-type header is answered without one, as Zilla answers it.
    assert.equal(serve(undefined), undefined);
    assert.deepEqual(replaced, []);
  });

  it('answers types a browser would render or run as application/octet-stream', () => {
    const { serve, replaced } = policy();
    for (const stored of [
      'text/html',
      'TEXT/HTML; charset=utf-8',
      'image/svg+xml',
      'application/xml',
      'text/xml',
      'application/xhtml+xml',
      'text/javascript',
      'application/pdf',
      'application/json+html',
    ])
      assert.equal(serve(stored), 'application/octet-stream', stored);
    assert.ok(replaced.every(([reason]) => reason === 'not_allowed'));
    assert.equal(replaced.length, 9);
  });

  it('answers a malformed stored type, CR and LF included, as application/octet-stream', () => {
    const { serve, replaced } = policy();
    for (const stored of [
      'application/json\r\nX-Injected: 1',
      'application/json\nSet-Cookie: a=b',
      'text/plain; charset=utf-8\r\n',
      'text/plain\u0000',
      'application/json; charset=\u00e9',
      'text/plain\u2028; a=b',
      'application/json; charset="a\r\nb"',
      'application/json; charset',
      'application/json; =x',
      'json',
      '/json',
      'application/',
      'application/json/x',
      '',
      ' ',
    ])
      assert.equal(serve(stored), 'application/octet-stream', JSON.stringify(stored));
    assert.ok(replaced.every(([reason]) => reason === 'invalid'));
  });

  it('takes a route list with wildcards, and everything with */*', () => {
    const images = policy(['image/*', 'application/*+json', 'text/html']);
    assert.equal(images.serve('image/png'), 'image/png');
    assert.equal(images.serve('image/svg+xml'), 'image/svg+xml', 'what the operator listed');
    assert.equal(images.serve('text/html'), 'text/html');
    assert.equal(images.serve('application/json'), 'application/octet-stream', '+json needs a prefix');
    assert.equal(images.serve('application/a+json'), 'application/a+json');
    assert.equal(images.serve('text/plain'), 'application/octet-stream');
    const all = policy(['*/*']);
    assert.equal(all.serve('text/html'), 'text/html');
    assert.equal(all.serve('text/html\r\nX: y'), 'application/octet-stream', 'still well formed');
    const none = policy([]);
    assert.equal(none.serve('application/json'), 'application/octet-stream');
  });

  it('refuses a list entry that is not a type/subtype pattern, naming it', () => {
    for (const pattern of ['json', 'text/html/x', 'text/ht ml', '*', 'a/b;c=d'])
      assert.throws(
        () => contentTypePolicy([pattern], 'routes[0].with.content-types'),
        /routes\[0\]\.with\.content-types\[0\]/,
      );
  });

  it('reads 64 KB adversarial values in linear time', () => {
    const inputs = [
      `text/plain;${' '.repeat(65_536)}x`,
      `text/plain; a="${'\\"'.repeat(32_768)}`,
      `${'a'.repeat(65_536)}/`,
      `text/plain${'; a=b'.repeat(13_000)}`,
      `text/plain;${'\t'.repeat(65_536)};`,
    ];
    // CPU time: a loaded machine stretches wall-clock time many times over, and backtracking on
    // 64 KB would take seconds of CPU.
    const took = cpuTimed(() => {
      for (const input of inputs) parseContentType(input);
    }).ms;
    assert.ok(took < 200, `${took.toFixed(1)} ms of CPU for ${inputs.length} inputs`);
  });
});
