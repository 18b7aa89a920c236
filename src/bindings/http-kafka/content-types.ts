// Which content types the proxy answers with as a Kafka record stored them. A record's
// `content-type` header is whatever its producer wrote (a PUT through kgate copies the request's
// Content-Type), so echoing it lets anyone who may produce choose how browsers treat a GET of
// the same origin: `text/html` or `image/svg+xml` would run their scripts there. A route
// answers a stored type as it is only when it is well formed and on the route's list; any
// other goes out as `application/octet-stream`, which browsers download rather than render
// (every response also carries `X-Content-Type-Options: nosniff`, so they do not guess).

/** What a route answers when the stored type is malformed or not on its list. */
export const FALLBACK_CONTENT_TYPE = 'application/octet-stream';

/** The route option's default: types a browser shows as data, never as a document. */
export const DEFAULT_CONTENT_TYPES: readonly string[] = [
  'application/json',
  'application/*+json',
  'text/plain',
  'application/octet-stream',
];

/** RFC 9110 token characters. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** A quoted-string of visible ASCII, spaces and tabs (no CR, LF or other control characters). */
const QUOTED = /^"(?:[\t !#-[\]-~]|\\[\t -~])*"$/;
/** A pattern's part: token characters, `*` standing for any run of them. */
const PATTERN_PART = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Why a stored type was not answered as it is. */
export type Replaced = 'invalid' | 'not_allowed';

/** A route's list of content types, compiled. */
export interface ContentTypePolicy {
  /** The patterns as written, for messages. */
  readonly patterns: readonly string[];
  /** Whether a media type (lower case `type/subtype`) is on the list. */
  allows(mediaType: string): boolean;
  /** The Content-Type to answer for one a record stored; none for a record that stored none. */
  serve(stored: string | undefined): string | undefined;
}

/** Told of every stored type a policy answered as the fallback instead, and why. */
export type ReplacedHook = (reason: Replaced, stored: string) => void;

function partMatcher(part: string): (value: string) => boolean {
  if (!part.includes('*')) return (value) => value === part;
  const pieces = part.split('*');
  return (value) => {
    // A glob over token characters: the pieces in order, the first at the start, the last at the end.
    const first = pieces[0] ?? '';
    const last = pieces[pieces.length - 1] ?? '';
    if (!value.startsWith(first) || value.length < first.length + last.length) return false;
    let at = first.length;
    for (let i = 1; i < pieces.length - 1; i++) {
      const found = value.indexOf(pieces[i] ?? '', at);
      if (found < 0) return false;
      at = found + (pieces[i] ?? '').length;
    }
    return value.length - last.length >= at && value.endsWith(last);
  };
}

/**
 * Compiles a route's list: each entry `type/subtype`, either part a token where `*` stands for
 * any run of characters (`application/*+json`, `image/*`; `*\/*` allows every type). Throws
 * naming the entry that is not one.
 */
export function contentTypePolicy(
  patterns: readonly string[],
  where: string,
  onReplaced?: ReplacedHook,
): ContentTypePolicy {
  const matchers = patterns.map((pattern, i) => {
    const [type, subtype, ...rest] = pattern.trim().toLowerCase().split('/');
    if (
      type === undefined ||
      subtype === undefined ||
      rest.length > 0 ||
      !PATTERN_PART.test(type) ||
      !PATTERN_PART.test(subtype)
    )
      throw new Error(`${where}[${i}]: ${JSON.stringify(pattern)} is not a type/subtype pattern`);
    const matchType = partMatcher(type);
    const matchSubtype = partMatcher(subtype);
    return (mediaType: string): boolean => {
      const slash = mediaType.indexOf('/');
      return matchType(mediaType.slice(0, slash)) && matchSubtype(mediaType.slice(slash + 1));
    };
  });
  const policy: ContentTypePolicy = {
    patterns,
    allows: (mediaType) => matchers.some((matches) => matches(mediaType)),
    serve: (stored) => {
      const served = servedContentType(stored, policy);
      if (served.replaced !== undefined && stored !== undefined) onReplaced?.(served.replaced, stored);
      return served.contentType;
    },
  };
  return policy;
}

/**
 * Without the spaces and tabs around it, the only whitespace RFC 9110 allows around a header's
 * parts. A loop rather than `/[ \t]+$/`, which takes time quadratic in a long run of spaces.
 */
function trimOws(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && (text[start] === ' ' || text[start] === '\t')) start++;
  while (end > start && (text[end - 1] === ' ' || text[end - 1] === '\t')) end--;
  return text.slice(start, end);
}

/**
 * A Content-Type value as RFC 9110 8.3 writes it, `type/subtype` and `; name=value` parameters:
 * its media type in lower case and the value rewritten from the parts that passed, or undefined
 * when it is not one. What comes back holds only token characters, quoted strings of visible
 * ASCII, `/`, `;`, `=` and spaces, so it can always be sent as a header.
 */
export function parseContentType(
  value: string,
): { readonly mediaType: string; readonly text: string } | undefined {
  const [head = '', ...parameters] = value.split(';');
  const type = trimOws(head);
  const slash = type.indexOf('/');
  if (slash < 0 || !TOKEN.test(type.slice(0, slash)) || !TOKEN.test(type.slice(slash + 1))) return undefined;
  const parts = [type];
  for (const parameter of parameters) {
    const trimmed = trimOws(parameter);
    // RFC 9110 allows empty parameters; a quoted value holding `;` was split apart above and is
    // refused, which is safe.
    if (trimmed === '') continue;
    const eq = trimmed.indexOf('=');
    const name = trimmed.slice(0, eq);
    const text = trimmed.slice(eq + 1);
    if (eq < 0 || !TOKEN.test(name) || !(TOKEN.test(text) || QUOTED.test(text))) return undefined;
    parts.push(`${name}=${text}`);
  }
  return { mediaType: type.toLowerCase(), text: parts.join('; ') };
}

/**
 * The Content-Type to answer for a stored one, and why it was replaced if it was. A record that
 * stored none is answered without one, as Zilla answers it (every response says `nosniff`, so a
 * browser does not guess one either).
 */
export function servedContentType(
  stored: string | undefined,
  policy: Pick<ContentTypePolicy, 'allows'>,
): { readonly contentType?: string; readonly replaced?: Replaced } {
  if (stored === undefined) return {};
  const parsed = parseContentType(stored);
  if (parsed === undefined) return { contentType: FALLBACK_CONTENT_TYPE, replaced: 'invalid' };
  if (!policy.allows(parsed.mediaType))
    return { contentType: FALLBACK_CONTENT_TYPE, replaced: 'not_allowed' };
  return { contentType: parsed.text };
}
