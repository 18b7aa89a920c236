import { strict as assert } from 'node:assert';
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { matchesIfNoneMatch } from '../../src/bindings/http-filesystem/proxy.ts';
import { parseIfNoneMatch, progressFromIfNoneMatch } from '../../src/bindings/http-kafka/etag.ts';
import { parsePrefer } from '../../src/bindings/http-kafka/prefer.ts';
import { applyCors, parseCorsPolicy } from '../../src/bindings/http/cors.ts';
import { HeaderConditionMatcher } from '../../src/bindings/http/header-conditions.ts';
import { refuseTarget } from '../../src/bindings/http/request-line.ts';
import { parseProgress } from '../../src/bindings/kafka/cache_client/index.ts';
import { decodeProgress } from '../../src/bindings/proxies/progress-token.ts';
import { compileEventId } from '../../src/bindings/sse-kafka/event-id.ts';
import { formatData } from '../../src/bindings/sse/framing.ts';
import { acceptsEventStream } from '../../src/bindings/sse/server.ts';
import { compileGlob, matchPath } from '../../src/config/index.ts';
import { cpuTimed } from '../support/cpu-time.ts';

// Every parser that reads what a client sends, timed on 64 KB crafted to make a backtracking
// parser backtrack. Linear work on 64 KB takes a few milliseconds; quadratic takes seconds (the
// If-None-Match regex this replaced took 1.2 s on 16 KB), so a bound of 50 ms of CPU time on the
// fastest of a few runs tells them apart; CPU time, unlike wall-clock time, a loaded machine
// barely stretches.

const SIZE = 64 * 1024;
const BOUND_MS = 50;

function fastestMs(run: () => unknown, runs = 5): number {
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    best = Math.min(best, cpuTimed(run).ms);
  }
  return best;
}

/** `unit` repeated to SIZE code units, then `tail`. */
function fill(unit: string, tail = ''): string {
  return unit.repeat(Math.ceil(SIZE / unit.length)).slice(0, SIZE) + tail;
}

function assertLinear(name: string, run: () => unknown): void {
  const ms = fastestMs(run);
  assert.ok(ms < BOUND_MS, `${name}: ${ms.toFixed(1)} ms of CPU on ${SIZE} bytes`);
}

/** A token of many partitions, as a forged ETag or event id would carry. */
const manyPartitions = Buffer.from(
  Array.from({ length: 6000 }, (_, i) => `${i}:${i * 7}`).join(','),
  'latin1',
).toString('base64url');

describe('parsers of client bytes stay linear on 64 KB', () => {
  it('If-None-Match', () => {
    for (const [name, header] of [
      ['a token and a stray word', fill('a', ' b')],
      ['white space before two words', fill(' ', 'x y')],
      ['quotes', fill('"')],
      ['weak prefixes', fill('W/')],
      ['an unterminated tag', `W/"${fill('A')}`],
      ['commas', fill(',')],
      ['many short tags', fill('"a", ')],
      ['a forged token of many partitions', `"${manyPartitions}"`],
      ['a forged token with a huge offset', `"${Buffer.from(`0:${fill('9')}`).toString('base64url')}"`],
    ] as const) {
      assertLinear(`parseIfNoneMatch: ${name}`, () => parseIfNoneMatch(header));
      assertLinear(`progressFromIfNoneMatch: ${name}`, () => progressFromIfNoneMatch(header));
      assertLinear(`http-filesystem If-None-Match: ${name}`, () => matchesIfNoneMatch(header, '"1-2-3"'));
    }
  });

  it('progress tokens', () => {
    assertLinear('decodeProgress: many partitions', () => decodeProgress(manyPartitions));
    assertLinear('decodeProgress: not base64url', () => decodeProgress(fill('A', '!')));
    assertLinear('parseProgress: a huge offset', () => assert.throws(() => parseProgress(`0:${fill('9')}`)));
    assertLinear('parseProgress: white space', () => assert.throws(() => parseProgress(`${fill(' ')}0:1 x`)));
  });

  it('Prefer', () => {
    for (const header of [
      fill(' ', 'wait = 1'),
      `wait="${fill('"')}`,
      fill('wait=1;', ''),
      fill(',;='),
      `wait=${fill('9')}`,
    ])
      assertLinear('parsePrefer', () => parsePrefer(header));
  });

  it('Last-Event-ID, whatever the event id template', () => {
    for (const [template, id] of [
      ['${etag}', fill('A', '!')],
      ['["${base64(key)}","${etag}"]', `["${fill('A')}","${fill('A')}"!`],
      ['${base64(key)}${etag}', fill('A', '!')],
      ['${base64(key)}x${etag}', fill('x', '!')],
      ['${base64(key)}-${etag}-${base64(key)}', fill('-A', '!')],
    ] as const) {
      const format = compileEventId(template);
      assertLinear(`progressOf with ${template}`, () => format.progressOf(id));
    }
  });

  it('path templates', () => {
    for (const [template, path] of [
      ['/{a}-{b}', `/${fill('-', '/')}`],
      ['/{a}{b}{c}', `/${fill('a', '/')}`],
      ['/x/*/y/*/z', `/x/${fill('/y/')}`],
      ['/*a*b*c', `/${fill('ab')}`],
      ['/items/{id}', `/items/${fill('%41')}`],
      ['/items/{id}', `/items/${fill('%C0')}`],
      ['/items/{id};cid={cid}', `/items/${fill(';cid=')}`],
    ] as const)
      assertLinear(`matchPath ${template}`, () => matchPath(template, path));
    assertLinear('refuseTarget: escapes', () => refuseTarget(`/${fill('%E9')}`));
    assertLinear('refuseTarget: percent signs', () => refuseTarget(`/${fill('%')}`));
  });

  it('header, authority and SNI globs', () => {
    for (const [glob, value] of [
      ['*a*b*c', fill('ab')],
      ['*.*.*.example.com', fill('.')],
      ['?*?*?*x', fill('y')],
    ] as const) {
      assertLinear(`glob ${glob}`, () => compileGlob(glob).test(value));
      assertLinear(`glob ${glob}, any case`, () => compileGlob(glob, true).test(value.toUpperCase()));
    }
    const condition = new HeaderConditionMatcher({
      headers: { ':authority': '*.*.example.com', accept: '*json*' },
    });
    const request = { headers: { host: fill('.'), accept: fill('jso') }, socket: new Socket() };
    assertLinear('header condition', () => condition.match(request));
  });

  it('Accept, Origin and event data', () => {
    assertLinear('acceptsEventStream', () => acceptsEventStream(fill('text/html;q=0.1, ')));
    const policy = parseCorsPolicy({ policy: 'cross-origin', allow: { origins: ['https://app.example'] } });
    assert.ok(policy !== undefined);
    for (const origin of [`https://${fill('a.')}`, fill('%'), `https://app.example${fill(':')}`]) {
      const req = new IncomingMessage(new Socket());
      req.headers = { origin, host: 'localhost' };
      assertLinear('applyCors', () => applyCors(policy, req, new ServerResponse(req)));
    }
    assertLinear('formatData', () => formatData(fill('\r\r\n\n')));
  });
});
