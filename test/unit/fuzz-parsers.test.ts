import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseIfNoneMatch, progressFromIfNoneMatch } from '../../src/bindings/http-kafka/etag.ts';
import { MAX_WAIT_SECONDS, parsePrefer } from '../../src/bindings/http-kafka/prefer.ts';
import { refuseTarget } from '../../src/bindings/http/request-line.ts';
import { decodeProgress, encodeProgress } from '../../src/bindings/proxies/progress-token.ts';
import { compileEventId } from '../../src/bindings/sse-kafka/event-id.ts';
import { compileGlob, matchPath } from '../../src/config/index.ts';
import { fuzzParameters, hostileText, mutated, timed } from '../support/fuzz.ts';

// Fuzz targets for the parsers that read client bytes without a server around them: If-None-Match,
// Last-Event-ID (through every shape of event id template), Prefer, progress tokens, request paths
// against path templates, and the globs header and authority conditions use. Each one must never
// throw, answer in bounded time, and agree with a reference: the RegExp each matcher replaced (on
// inputs short enough for backtracking to be harmless), or the value the input was built from.

/** Far above the CPU time any of these takes on a few hundred characters, so a garbage collection cannot fail a run. */
const CALL_BOUND_MS = 250;

function quick<T>(what: string, run: () => T): T {
  const { ms, value } = timed(run);
  assert.ok(ms < CALL_BOUND_MS, `${what} took ${ms.toFixed(1)} ms of CPU`);
  return value;
}

const BASE64URL = [...'AZaz09-_'];
const HEADER_ALPHABET = [...'"W/,* \t!=;', ...BASE64URL];

const progressArb = fc
  .array(fc.tuple(fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.bigInt({ min: 0n, max: 2n ** 63n - 1n })), {
    maxLength: 6,
  })
  .map((entries) => new Map(entries));

describe('fuzz: progress tokens', () => {
  it('decode only what encodes back to the same token, and round-trip every progress', () => {
    fc.assert(
      fc.property(hostileText([...BASE64URL, '=', '!', '+']), (token) => {
        const progress = quick('decodeProgress', () => decodeProgress(token));
        if (progress !== undefined) assert.equal(encodeProgress(progress), token);
      }),
      fuzzParameters(2000),
    );
    fc.assert(
      fc.property(progressArb, (progress) => {
        const sorted = new Map([...progress].sort(([a], [b]) => a - b));
        assert.deepEqual(decodeProgress(encodeProgress(progress)), sorted);
      }),
      fuzzParameters(1000),
    );
  });
});

describe('fuzz: If-None-Match', () => {
  it('never throws, and only names tags that are in the header', () => {
    fc.assert(
      fc.property(hostileText(HEADER_ALPHABET, 400), (header) => {
        const tags = quick('parseIfNoneMatch', () => parseIfNoneMatch(header));
        for (const tag of tags) assert.ok(header.includes(tag));
        const progress = quick('progressFromIfNoneMatch', () => progressFromIfNoneMatch(header));
        if (progress !== undefined) assert.ok(tags.includes(encodeProgress(progress)));
      }),
      fuzzParameters(2000),
    );
  });

  it('reads well-formed lists of strong, weak and bare tags and *', () => {
    const etagc = fc.string({ unit: fc.constantFrom(...BASE64URL, '!', '#', '.', ','), maxLength: 12 });
    const bare = fc.string({
      unit: fc.constantFrom(...BASE64URL, '!', '#', '.'),
      minLength: 1,
      maxLength: 12,
    });
    const element = fc.oneof(
      etagc.map((tag) => ({ text: `"${tag}"`, tag })),
      etagc.map((tag) => ({ text: `W/"${tag}"`, tag })),
      bare.map((tag) => ({ text: tag, tag })),
      fc.constant({ text: '*', tag: '*' }),
    );
    const separator = fc.constantFrom(',', ', ', ' ,', ' , ', ',\t', ',,');
    fc.assert(
      fc.property(
        fc.array(fc.tuple(element, separator), { maxLength: 8 }),
        fc.constantFrom('', ' '),
        (items, pad) => {
          const header = pad + items.map(([e, s], i) => (i === 0 ? '' : s) + e.text).join('') + pad;
          assert.deepEqual(
            parseIfNoneMatch(header),
            items.map(([e]) => e.tag),
          );
        },
      ),
      fuzzParameters(1000),
    );
  });

  it('finds the progress of our tag among others', () => {
    const other = fc.string({ unit: fc.constantFrom(...BASE64URL), maxLength: 10 }).map((t) => `"!${t}"`);
    fc.assert(
      fc.property(fc.array(other, { maxLength: 4 }), progressArb, fc.boolean(), (others, progress, weak) => {
        const ours = `${weak ? 'W/' : ''}"${encodeProgress(progress)}"`;
        const found = progressFromIfNoneMatch([...others, ours, ...others].join(', '));
        assert.deepEqual(found, decodeProgress(encodeProgress(progress)));
      }),
      fuzzParameters(1000),
    );
  });
});

describe('fuzz: Prefer', () => {
  it('never throws and honours a wait only as a whole number of seconds up to the cap', () => {
    const header = hostileText([...'wait=respond-async;,"0123456789 \t', 'WAIT'], 200);
    fc.assert(
      fc.property(fc.oneof(header, fc.array(header, { maxLength: 3 })), (value) => {
        const prefs = quick('parsePrefer', () => parsePrefer(value));
        if (prefs.wait !== undefined) {
          assert.ok(Number.isInteger(prefs.wait) && prefs.wait >= 0 && prefs.wait <= MAX_WAIT_SECONDS);
        }
      }),
      fuzzParameters(2000),
    );
  });

  it('reads the first wait of well-formed preferences', () => {
    const ows = fc.constantFrom('', ' ', '\t');
    const pref = fc.oneof(
      fc.tuple(fc.nat({ max: 100_000 }), fc.boolean(), ows, ows).map(([n, quoted, a, b]) => ({
        text: `${a}wait${b}=${a}${quoted ? `"${n}"` : n}${b}`,
        wait: n,
      })),
      fc.constant({ text: 'respond-async', wait: undefined }),
      fc.constant({ text: 'handling=lenient;x=y', wait: undefined }),
    );
    fc.assert(
      fc.property(fc.array(pref, { maxLength: 5 }), (prefs) => {
        const first = prefs.find((p) => p.wait !== undefined)?.wait;
        const parsed = parsePrefer(prefs.map((p) => p.text).join(','));
        assert.equal(parsed.wait, first === undefined ? undefined : Math.min(first, MAX_WAIT_SECONDS));
        assert.equal(
          parsed.respondAsync,
          prefs.some((p) => p.text === 'respond-async'),
        );
      }),
      fuzzParameters(1000),
    );
  });
});

/** The event id matcher before it stopped backtracking: the reference on short ids. */
function eventIdOracle(template: string): (id: string) => Map<number, bigint> | undefined {
  const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  const source = template
    .split(/(\$\{[^}]*\})/)
    .filter((p) => p !== '')
    .map((part) =>
      part === '${etag}' ? '([A-Za-z0-9_-]*)' : part === '${base64(key)}' ? '[A-Za-z0-9+/=]*' : escape(part),
    )
    .join('');
  const re = new RegExp(`^${source}$`);
  return (id) => {
    const token = re.exec(id)?.[1];
    return token === undefined ? undefined : decodeProgress(token);
  };
}

describe('fuzz: Last-Event-ID', () => {
  // Small positions keep ids short enough for the backtracking reference to stay quick.
  const smallProgressArb = fc
    .array(fc.tuple(fc.nat({ max: 20 }), fc.bigInt({ min: 0n, max: 999n })), { maxLength: 2 })
    .map((entries) => new Map(entries));
  const literalUnits = [...'Az09+/=-_x"[],.:'];
  const templateArb = fc
    .tuple(
      fc.array(
        fc.oneof(
          fc.string({ unit: fc.constantFrom(...literalUnits), minLength: 1, maxLength: 3 }),
          fc.constant('${base64(key)}'),
        ),
        { maxLength: 4 },
      ),
      fc.nat(),
    )
    .map(([parts, at]) => {
      const where = at % (parts.length + 1);
      return [...parts.slice(0, where), '${etag}', ...parts.slice(where)].join('');
    });

  it('finds the same progress as the RegExp it replaced, for any template and id', () => {
    fc.assert(
      fc.property(
        templateArb,
        smallProgressArb,
        fc.option(fc.uint8Array({ maxLength: 6 })),
        fc.array(
          fc.record({
            at: fc.nat(),
            text: fc.string({ unit: fc.constantFrom(...literalUnits), maxLength: 2 }),
          }),
          {
            maxLength: 2,
          },
        ),
        (template, progress, key, edits) => {
          const format = compileEventId(template);
          let id = format.format(progress, key === null ? null : Buffer.from(key));
          for (const { at, text } of edits) {
            const where = at % (id.length + 1);
            id = id.slice(0, where) + text + id.slice(where + 1);
          }
          assert.deepEqual(
            quick('progressOf', () => format.progressOf(id)),
            eventIdOracle(template)(id),
          );
        },
      ),
      fuzzParameters(2000),
    );
  });

  it('round-trips through Zilla’s templates and never throws on any id', () => {
    for (const template of ['${etag}', '["${base64(key)}","${etag}"]']) {
      const format = compileEventId(template);
      fc.assert(
        fc.property(progressArb, fc.option(fc.uint8Array({ maxLength: 40 })), (progress, key) => {
          const id = format.format(progress, key === null ? null : Buffer.from(key));
          assert.deepEqual(format.progressOf(id), decodeProgress(encodeProgress(progress)));
        }),
        fuzzParameters(500),
      );
      fc.assert(
        fc.property(hostileText([...literalUnits, '"'], 300), (id) => {
          quick('progressOf', () => format.progressOf(id));
        }),
        fuzzParameters(1000),
      );
    }
  });
});

/** A glob as a RegExp, as compileGlob built it before: the reference on short subjects. */
function globOracle(pattern: string, ignoreCase: boolean): RegExp {
  const escape = (c: string): string => c.replace(/[.+^${}()|[\]\\/?*]/g, '\\$&');
  const source = [...pattern].map((c) => (c === '*' ? '.*' : c === '?' ? '.' : escape(c))).join('');
  return new RegExp(`^${source}$`, ignoreCase ? 'si' : 's');
}

/** A path template as the RegExp Zilla compiles it to (`{name}` as `(.+)`), decoding as compilePath does. */
function pathOracle(template: string, path: string): Record<string, string> | undefined {
  const names: string[] = [];
  let source = '';
  for (const part of template.split(/(\{[A-Za-z_][A-Za-z0-9_]*\}|\*)/)) {
    if (part === '*') source += '.*';
    else if (/^\{[A-Za-z_][A-Za-z0-9_]*\}$/.test(part)) {
      names.push(part.slice(1, -1));
      source += '(.+)';
    } else source += part.replace(/[.+^${}()|[\]\\/?*]/g, '\\$&');
  }
  const match = new RegExp(`^${source}$`, 's').exec(path);
  if (match === null) return undefined;
  const params: Record<string, string> = {};
  for (const [i, name] of names.entries()) {
    try {
      params[name] = decodeURIComponent(match[i + 1] ?? '');
    } catch {
      return undefined;
    }
  }
  return params;
}

describe('fuzz: paths, path templates and globs', () => {
  const pathUnits = [...'/;-.ab%4C0zé', '%2F', '%zz', '%C3%A9', '%C0%AF'];
  const fill = fc.string({ unit: fc.constantFrom(...pathUnits), maxLength: 4 });
  /** A template, and a path made from it by filling its parameters and wildcards, then maybe edited. */
  const templateAndPath = fc
    .array(
      fc.tuple(
        fc.oneof(
          {
            weight: 3,
            arbitrary: fc.string({ unit: fc.constantFrom(...'/;-.ab'), minLength: 1, maxLength: 3 }),
          },
          { weight: 1, arbitrary: fc.constantFrom('{x}', '{y}', '{id}') },
          { weight: 1, arbitrary: fc.constant('*') },
        ),
        fill,
      ),
      { maxLength: 6 },
    )
    .chain((parts) => {
      const template = `/${parts.map(([part]) => part).join('')}`;
      const filled = `/${parts.map(([part, value]) => (part === '*' || part.startsWith('{') ? value : part)).join('')}`;
      return fc.tuple(
        fc.constant(template),
        fc.oneof(fc.constant(filled), mutated(fc.constant(filled), pathUnits)),
      );
    });

  it('capture the parameters the RegExp did, and nothing that does not percent-decode', () => {
    fc.assert(
      fc.property(templateAndPath, ([template, path]) => {
        assert.deepEqual(
          quick('matchPath', () => matchPath(template, path)),
          pathOracle(template, path),
        );
      }),
      fuzzParameters(3000),
    );
  });

  it('match globs as the RegExp did, in either case', () => {
    const globUnits = [...'*?ab.A-é'];
    const subjectUnits = [...'abAB.-éÉ\n'];
    const filler = fc.string({ unit: fc.constantFrom(...subjectUnits), maxLength: 4 });
    // Half the subjects are the glob with its wildcards filled in, so many of them match.
    const globAndSubject = fc
      .array(fc.tuple(fc.constantFrom(...globUnits), filler), { maxLength: 8 })
      .chain((parts) => {
        const glob = parts.map(([unit]) => unit).join('');
        const filled = parts
          .map(([unit, text]) => (unit === '*' ? text : unit === '?' ? (text[0] ?? 'a') : unit))
          .join('');
        return fc.tuple(
          fc.constant(glob),
          fc.oneof(fc.constant(filled), mutated(fc.constant(filled), subjectUnits)),
        );
      });
    fc.assert(
      fc.property(globAndSubject, fc.boolean(), ([glob, subject], ignoreCase) => {
        assert.equal(
          quick('glob', () => compileGlob(glob, ignoreCase).test(subject)),
          globOracle(glob, ignoreCase).test(subject),
        );
      }),
      fuzzParameters(3000),
    );
  });

  it('refuse exactly the request targets whose path does not percent-decode', () => {
    fc.assert(
      fc.property(hostileText([...pathUnits, '?', '%', '%E9', '%ED%A0%80'], 200), (target) => {
        const refused = quick('refuseTarget', () => refuseTarget(target));
        const path = target.split('?')[0] ?? '';
        let decodes = true;
        try {
          decodeURIComponent(path);
        } catch {
          decodes = false;
        }
        assert.equal(refused === undefined, decodes);
      }),
      fuzzParameters(2000),
    );
  });
});
