import type { Authorization } from '../../guards/index.ts';
import type { Condition, Filter } from '../kafka/cache_client/index.ts';
import { checkTemplate, expand, paramsLookup } from './templates.ts';

// Route filters as http-kafka fetch routes and sse-kafka routes configure them: read and checked
// once at start, expanded with each request's path parameters into cache_client filters.

/** One configured filter before substitution: a key and/or header values, all of which must hold. */
export interface FilterTemplate {
  readonly key?: string;
  readonly headers: readonly (readonly [string, string])[];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads `with.filters` (already schema-checked) and checks its templates. */
export function filterTemplates(raw: unknown, where: string, params: ReadonlySet<string>): FilterTemplate[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) throw new Error(`${where}: filters must be a list`);
  return raw.map((item: unknown, i) => {
    const at = `${where}.filters[${i}]`;
    if (!isRecord(item)) throw new Error(`${at}: a filter is an object with key and/or headers`);
    const key = item['key'];
    const headersRaw = item['headers'];
    if (key !== undefined && typeof key !== 'string') throw new Error(`${at}.key must be a string`);
    if (key !== undefined) checkTemplate(key, `${at}.key`, params, []);
    const headers: [string, string][] = [];
    if (headersRaw !== undefined) {
      if (!isRecord(headersRaw)) throw new Error(`${at}.headers must map names to values`);
      for (const [name, value] of Object.entries(headersRaw)) {
        if (typeof value !== 'string') throw new Error(`${at}.headers.${name} must be a string`);
        checkTemplate(value, `${at}.headers.${name}`, params, []);
        headers.push([name, value]);
      }
    }
    return key === undefined ? { headers } : { key, headers };
  });
}

/** The cache_client filters for one request: templates expanded with its path parameters and session. */
export function buildFilters(
  templates: readonly FilterTemplate[],
  params: Readonly<Record<string, string>>,
  authorization?: Authorization,
): Filter[] | undefined {
  if (templates.length === 0) return undefined;
  const lookup = paramsLookup(params, {}, authorization);
  return templates.map((t) => {
    const conditions: Condition[] = [];
    if (t.key !== undefined) conditions.push({ key: Buffer.from(expand(t.key, lookup), 'utf8') });
    for (const [name, value] of t.headers)
      conditions.push({ header: { name, value: Buffer.from(expand(value, lookup), 'utf8') } });
    return conditions;
  });
}
