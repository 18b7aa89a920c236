import type { IncomingMessage } from 'node:http';
import type { Authorization, Guard } from '../../guards/index.ts';
import { isRefusal } from '../../guards/index.ts';

/**
 * The http server's `authorization`: where a request carries its credentials (a header such as
 * `authorization: Bearer {credentials}`, a query parameter, a cookie), and the guard that verifies
 * them. The server asks once per request, before routing; routes then admit the request or pass
 * it over by their `guarded` scopes (see guards/guard.ts).
 */

/** The `authorization` option as the schema admits it: one guard, its credential templates. */
export interface AuthorizationJson {
  readonly [guard: string]: {
    readonly credentials: {
      readonly headers?: { readonly [name: string]: string };
      readonly query?: { readonly [name: string]: string };
      readonly cookies?: { readonly [name: string]: string };
    };
  };
}

/** One place credentials may be: a name, and the text around `{credentials}` in its template. */
interface CredentialsTemplate {
  readonly name: string;
  readonly prefix: string;
  readonly suffix: string;
}

export interface CredentialsSources {
  readonly guard: string;
  readonly headers: readonly CredentialsTemplate[];
  readonly query: readonly CredentialsTemplate[];
  readonly cookies: readonly CredentialsTemplate[];
}

function templates(
  entries: { readonly [name: string]: string } | undefined,
  lower: boolean,
): CredentialsTemplate[] {
  return Object.entries(entries ?? {}).map(([name, template]) => {
    const at = template.indexOf('{credentials}');
    return {
      name: lower ? name.toLowerCase() : name,
      prefix: template.slice(0, at),
      suffix: template.slice(at + '{credentials}'.length),
    };
  });
}

/** The `authorization` option that passed the schema, or undefined when there is none. */
export function credentialsSources(json: AuthorizationJson | undefined): CredentialsSources | undefined {
  const entry = json === undefined ? undefined : Object.entries(json)[0];
  if (entry === undefined) return undefined;
  const [guard, { credentials }] = entry;
  return {
    guard,
    headers: templates(credentials.headers, true),
    query: templates(credentials.query, false),
    cookies: templates(credentials.cookies, false),
  };
}

/**
 * The credentials in `value` as `template` frames them; the scheme word of a header (`Bearer`) is
 * matched in any case, as RFC 9110 has it.
 */
function unframe(value: string, template: CredentialsTemplate): string | undefined {
  const { prefix, suffix } = template;
  if (value.length < prefix.length + suffix.length) return undefined;
  if (value.slice(0, prefix.length).toLowerCase() !== prefix.toLowerCase()) return undefined;
  if (!value.endsWith(suffix)) return undefined;
  const credentials = value.slice(prefix.length, value.length - suffix.length).trim();
  return credentials === '' ? undefined : credentials;
}

function cookieValue(header: string, name: string): string | undefined {
  for (const pair of header.split(';')) {
    const at = pair.indexOf('=');
    if (at < 0 || pair.slice(0, at).trim() !== name) continue;
    return pair.slice(at + 1).trim();
  }
  return undefined;
}

/** The request's credentials: the first present of the headers, the query parameters, the cookies. */
export function extractCredentials(req: IncomingMessage, sources: CredentialsSources): string | undefined {
  for (const template of sources.headers) {
    const value = req.headers[template.name];
    if (typeof value !== 'string') continue;
    const credentials = unframe(value, template);
    if (credentials !== undefined) return credentials;
  }
  if (sources.query.length > 0) {
    const url = req.url ?? '/';
    const at = url.indexOf('?');
    if (at >= 0) {
      const query = new URLSearchParams(url.slice(at + 1));
      for (const template of sources.query) {
        const value = query.get(template.name);
        const credentials = value === null ? undefined : unframe(value, template);
        if (credentials !== undefined) return credentials;
      }
    }
  }
  const cookie = req.headers.cookie;
  if (sources.cookies.length > 0 && typeof cookie === 'string') {
    for (const template of sources.cookies) {
      const value = cookieValue(cookie, template.name);
      const credentials = value === undefined ? undefined : unframe(value, template);
      if (credentials !== undefined) return credentials;
    }
  }
  return undefined;
}

/** What the request's credentials are worth to `guard`; refusals are returned, never thrown. */
export async function authorize(
  req: IncomingMessage,
  sources: CredentialsSources,
  guard: Guard,
): Promise<Authorization & { readonly refused?: string }> {
  const credentials = extractCredentials(req, sources);
  if (credentials === undefined) return { guard: sources.guard, presented: false };
  const verdict = await guard.verify(credentials);
  if (isRefusal(verdict)) return { guard: sources.guard, presented: true, refused: verdict.refused };
  return { guard: sources.guard, presented: true, session: verdict };
}

/**
 * `target` with the values of the query parameters that may carry credentials replaced, for
 * messages and logs: a token in a URL must not reach either.
 */
export function withoutCredentials(target: string, sources: CredentialsSources): string {
  const at = target.indexOf('?');
  if (at < 0 || sources.query.length === 0) return target;
  const names = new Set(sources.query.map((t) => t.name));
  const query = target
    .slice(at + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      let name = eq < 0 ? pair : pair.slice(0, eq);
      try {
        name = decodeURIComponent(name.replaceAll('+', ' '));
      } catch {
        // A name that does not decode is matched as written.
      }
      return eq >= 0 && names.has(name) ? `${pair.slice(0, eq)}=[redacted]` : pair;
    })
    .join('&');
  return `${target.slice(0, at)}?${query}`;
}
