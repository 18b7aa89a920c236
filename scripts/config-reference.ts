// Renders docs/config-reference.md from the `description` fields of schema/kgate.schema.json, so the
// reference cannot drift from what the loader accepts. `node scripts/config-reference.ts` rewrites the
// file (`npm run schema` rewrites the schema first); `--check` only compares (a unit test does the same).
import { readFile, writeFile } from 'node:fs/promises';
import { format, resolveConfig } from 'prettier';

type Schema = Record<string, unknown> | boolean;
type JsonObject = Record<string, unknown>;

export const SCHEMA_FILE = new URL('../schema/kgate.schema.json', import.meta.url);
export const REFERENCE_FILE = new URL('../docs/config-reference.md', import.meta.url);

// Listed once in the common section rather than in every binding's table.
const COMMON_BINDING_FIELDS = new Set(['type', 'kind', 'vault', 'telemetry']);

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

interface Row {
  name: string;
  type: string;
  required: boolean;
  description: string;
}

class Renderer {
  readonly root: JsonObject;

  constructor(root: JsonObject) {
    this.root = root;
  }

  definitions(): JsonObject {
    return isObject(this.root['definitions']) ? this.root['definitions'] : {};
  }

  /** Follows `$ref` chains; the outermost description wins, as it is the most specific. */
  resolve(schema: Schema): { schema: JsonObject; description: string } {
    let current: unknown = schema;
    let description = '';
    for (let depth = 0; depth < 20 && isObject(current); depth++) {
      if (description === '' && typeof current['description'] === 'string')
        description = current['description'];
      const ref = current['$ref'];
      if (typeof ref !== 'string') break;
      current = this.definitions()[ref.replace('#/definitions/', '')];
    }
    return { schema: isObject(current) ? current : {}, description };
  }

  typeOf(schema: Schema): string {
    if (schema === true) return 'any';
    const { schema: s } = this.resolve(schema);
    if (Array.isArray(s['enum'])) return s['enum'].map((v) => `\`${String(v)}\``).join(', ');
    if ('const' in s) return `\`${String(s['const'])}\``;
    if (Array.isArray(s['anyOf'])) return (s['anyOf'] as Schema[]).map((b) => this.typeOf(b)).join(' or ');
    switch (s['type']) {
      case 'array': {
        const items = this.typeOf(isObject(s['items']) ? s['items'] : true);
        return `array of ${items.includes(' or ') ? `(${items})` : items}`;
      }
      case 'object':
        if (!isObject(s['properties']) && isObject(s['additionalProperties'])) {
          return `map of ${this.typeOf(s['additionalProperties'])}`;
        }
        return 'object';
      case undefined:
        return 'any';
      default:
        return String(s['type']);
    }
  }

  rows(schema: Schema, prefix: string, skip: ReadonlySet<string> = new Set(), deep = true): Row[] {
    const { schema: s } = this.resolve(schema);
    const properties = isObject(s['properties']) ? s['properties'] : {};
    const required = Array.isArray(s['required']) ? s['required'].map(String) : [];
    const rows: Row[] = [];
    for (const [key, value] of Object.entries(properties)) {
      if (skip.has(key) || typeof value === 'boolean') continue;
      const name = `${prefix}${key}`;
      const resolved = this.resolve(value as Schema);
      rows.push({
        name,
        type: this.typeOf(value as Schema),
        required: required.includes(key),
        description: resolved.description,
      });
      if (deep) rows.push(...this.nested(resolved.schema, name));
    }
    return rows;
  }

  nested(s: JsonObject, name: string): Row[] {
    if (isObject(s['properties'])) return this.rows(s, `${name}.`);
    if (
      s['type'] === 'array' &&
      isObject(s['items']) &&
      isObject(this.resolve(s['items']).schema['properties'])
    ) {
      return this.rows(s['items'], `${name}[].`);
    }
    const map = s['additionalProperties'];
    if (isObject(map) && isObject(this.resolve(map).schema['properties']))
      return this.rows(map, `${name}.<name>.`);
    return [];
  }

  table(rows: readonly Row[], heading: string): string[] {
    const cell = (text: string): string => text.replaceAll('|', '\\|').replaceAll('\n', ' ');
    return [
      `| ${heading} | Type | Required | Description |`,
      '| --- | --- | --- | --- |',
      ...rows.map(
        (r) => `| \`${r.name}\` | ${cell(r.type)} | ${r.required ? 'yes' : ''} | ${cell(r.description)} |`,
      ),
    ];
  }

  /** type -> kinds, in schema order, from the binding selector. */
  bindings(): [string, string][] {
    const binding = this.definitions()['binding'];
    const allOf = isObject(binding) && Array.isArray(binding['allOf']) ? (binding['allOf'] as unknown[]) : [];
    const pairs: [string, string][] = [];
    for (const entry of allOf) {
      if (!isObject(entry) || !isObject(entry['if']) || !isObject(entry['if']['properties'])) continue;
      const { type, kind } = entry['if']['properties'];
      if (isObject(type) && isObject(kind)) pairs.push([String(type['const']), String(kind['const'])]);
    }
    return pairs;
  }

  exitRule(def: JsonObject): string {
    const required = Array.isArray(def['required']) ? def['required'] : [];
    const properties = isObject(def['properties']) ? def['properties'] : {};
    const then = def['then'];
    if (required.includes('exit')) return 'required';
    if (isObject(then) && Array.isArray(then['required']) && then['required'].includes('exit')) {
      return 'required unless there are routes';
    }
    if ('exit' in properties) return 'optional';
    const routes = isObject(properties['routes']) ? this.resolve(properties['routes']).schema : {};
    const route = isObject(routes['items']) ? this.resolve(routes['items']).schema : {};
    if (Array.isArray(route['required']) && route['required'].includes('exit')) return 'per route only';
    return 'none; this binding ends a chain';
  }

  render(): string {
    const out: string[] = [
      '# Configuration reference',
      '',
      '<!-- Generated from schema/kgate.schema.json by scripts/config-reference.ts; edit the schema fragments (src/config/core-schema.ts, src/bindings/**/schema.ts), then run `npm run schema`. -->',
      '',
      String(this.root['description'] ?? ''),
      '',
      'Editors can validate files against `schema/kgate.schema.json` (JSON Schema draft-07), for example with a',
      '`# yaml-language-server: $schema=...` comment.',
      '',
      '## Top-level sections',
      '',
      ...this.table(this.rows(this.root, '', new Set(), false), 'Section'),
      '',
      'Any other top-level key is an error.',
      '',
      '## Telemetry',
      '',
      this.resolve((isObject(this.root['properties']) ? this.root['properties']['telemetry'] : {}) as Schema)
        .description,
      '',
      ...this.table(this.rows(this.definitions()['telemetry'] as Schema, 'telemetry.'), 'Field'),
      '',
      'Options of a `prometheus` exporter:',
      '',
      ...this.table(
        this.rows(this.definitions()['prometheusOptions'] as Schema, 'telemetry.exporters.<name>.options.'),
        'Field',
      ),
      '',
      '## Guards',
      '',
      this.resolve((isObject(this.root['properties']) ? this.root['properties']['guards'] : {}) as Schema)
        .description,
      '',
      ...this.table(this.rows(this.definitions()['guard'] as Schema, 'guards.<name>.'), 'Field'),
      '',
      '## Environment variables',
      '',
      'Any string value may contain `${{env.NAME}}`, several times and alongside other text',
      '(`"${{env.HOST}}:9092"`). Values are substituted before validation. An unset variable is an error that',
      'names the variable and the value using it. An unquoted value that is exactly an expression takes the',
      'type of the substituted text, so `port: ${{env.PORT}}` is a number, as in Zilla.',
      '',
      'Other `${...}` forms, such as `${params.id}`, are templates evaluated per request and are left as they are.',
      '',
      '## Bindings',
      '',
      'Every binding is a mapping with these common fields; the other fields depend on its type and kind.',
      '',
      ...this.table(
        [
          {
            name: 'type',
            type: 'string',
            required: true,
            description: 'Binding type, from the table below.',
          },
          {
            name: 'kind',
            type: 'string',
            required: true,
            description: 'Binding kind; which kinds exist depends on the type.',
          },
          ...this.rows(
            this.definitions()['kafka.client'] as Schema,
            '',
            new Set(['type', 'kind', 'options', 'routes', 'exit']),
          ),
        ],
        'Field',
      ),
      '',
      'Exits and route exits must name bindings in the same file, and must not form a cycle. Routes are tried in',
      'order and the first match wins; a route matches when any of its `when` conditions does, and a condition',
      "matches when all of its fields do. Without a match, the binding's `exit` is used.",
      '',
      '| Type | Kind | Exit |',
      '| --- | --- | --- |',
    ];
    const pairs = this.bindings();
    for (const [type, kind] of pairs) {
      const def = this.resolve(this.definitions()[`${type}.${kind}`] as Schema).schema;
      out.push(`| [\`${type}\`](#${type}-${kind}) | \`${kind}\` | ${this.exitRule(def)} |`);
    }
    for (const [type, kind] of pairs) {
      const def = this.resolve(this.definitions()[`${type}.${kind}`] as Schema).schema;
      out.push(
        '',
        `### ${type} ${kind}`,
        '',
        String(def['description'] ?? ''),
        '',
        `Exit: ${this.exitRule(def)}.`,
        '',
      );
      out.push(...this.table(this.rows(def, '', COMMON_BINDING_FIELDS), 'Field'));
    }
    out.push('');
    return out.join('\n');
  }
}

export function renderConfigReference(schema: JsonObject): string {
  return new Renderer(schema).render();
}

/** The reference as committed: rendered, then formatted with the repository's Prettier settings. */
export async function formattedConfigReference(): Promise<string> {
  const schema = JSON.parse(await readFile(SCHEMA_FILE, 'utf8')) as JsonObject;
  const options = (await resolveConfig(REFERENCE_FILE)) ?? {};
  return format(renderConfigReference(schema), { ...options, parser: 'markdown' });
}

if (import.meta.main) {
  const text = await formattedConfigReference();
  if (process.argv.includes('--check')) {
    const current = await readFile(REFERENCE_FILE, 'utf8').catch(() => '');
    if (current !== text) {
      console.error('docs/config-reference.md is out of date; run `node scripts/config-reference.ts`');
      process.exitCode = 1;
    }
  } else {
    await writeFile(REFERENCE_FILE, text);
  }
}
