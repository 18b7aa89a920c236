import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { didYouMean } from './diagnostics.ts';

/** A schema violation before it is located in the file. */
export interface SchemaProblem {
  /** JSON pointer of the value the message is about. */
  pointer: string;
  /** Locate at the value node, or at the key that names it (unknown and missing properties). */
  anchor: 'value' | 'key';
  /** Appended to the pointer's display path; names a missing property. */
  missing?: string;
  /** Display the parent path instead of the pointer's own (unknown property: the key is in the message). */
  parentPath?: boolean;
  message: string;
}

type JsonObject = Record<string, unknown>;

/**
 * How a message names the value at a pointer. Values may hold substituted secrets, so the loader
 * passes one that shows the file's own text (`"${{env.NAME}}"`) for those.
 */
export type ShowValue = (pointer: string, value: unknown) => string;

// Resolved from the module so it works both from src/ and from the compiled dist/.
export const SCHEMA_URL = new URL('../../schema/kgate.schema.json', import.meta.url);

let cached: { schema: JsonObject; validate: ValidateFunction; kinds: Map<string, string[]> } | undefined;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function compiled(): NonNullable<typeof cached> {
  if (cached) return cached;
  const schema = JSON.parse(readFileSync(SCHEMA_URL, 'utf8')) as JsonObject;
  const ajv = new Ajv({ allErrors: true, verbose: true });
  // VS Code's convention for a readable pattern failure; editors using the schema show the same text.
  ajv.addKeyword({ keyword: 'patternErrorMessage', schemaType: 'string' });
  cached = { schema, validate: ajv.compile(schema), kinds: kindsFromSchema(schema) };
  return cached;
}

// The schema is the single source of the type and kind lists; read them back from its if/then selectors.
function kindsFromSchema(schema: JsonObject): Map<string, string[]> {
  const kinds = new Map<string, string[]>();
  const definitions = isObject(schema['definitions']) ? schema['definitions'] : {};
  const binding = isObject(definitions['binding']) ? definitions['binding'] : {};
  const allOf = Array.isArray(binding['allOf']) ? (binding['allOf'] as unknown[]) : [];
  for (const entry of allOf) {
    if (!isObject(entry) || !isObject(entry['if']) || !isObject(entry['then'])) continue;
    const ifProperties = entry['if']['properties'];
    const thenProperties = entry['then']['properties'];
    if (!isObject(ifProperties) || !isObject(thenProperties)) continue;
    const type = isObject(ifProperties['type']) ? ifProperties['type']['const'] : undefined;
    const kind = isObject(thenProperties['kind']) ? thenProperties['kind']['enum'] : undefined;
    if (typeof type === 'string' && Array.isArray(kind)) kinds.set(type, kind.map(String));
  }
  return kinds;
}

export function bindingKinds(): Map<string, string[]> {
  return compiled().kinds;
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'a boolean',
  object: 'an object',
  array: 'an array',
  null: 'null',
};

function orList(items: readonly string[]): string {
  return items.length <= 1
    ? (items[0] ?? '')
    : `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}`;
}

function typePhrase(type: unknown): string {
  const types = Array.isArray(type) ? type.map(String) : [String(type)];
  return orList(types.map((t) => TYPE_NAMES[t] ?? t));
}

function parentPointer(pointer: string): string {
  return pointer.slice(0, pointer.lastIndexOf('/'));
}

/** A scalar as a message quotes it; a mapping or a list only by what it is, never its contents. */
export function showValue(_pointer: string, value: unknown): string {
  if (Array.isArray(value)) return '(a list)';
  if (typeof value === 'object' && value !== null) return '(a mapping)';
  return typeof value === 'string' ? `"${value}"` : String(value);
}

function unquoted(text: string): string {
  return text.startsWith('"') && text.endsWith('"') ? text.slice(1, -1) : text;
}

/** Whether the branch of an anyOf failed on its own type, i.e. the value was not meant for it. */
function branchMismatched(errors: ErrorObject[], branchPath: string, instancePath: string): boolean {
  return errors.some(
    (e) => e.keyword === 'type' && e.instancePath === instancePath && e.schemaPath === `${branchPath}/type`,
  );
}

/**
 * ajv reports every failed branch of an anyOf; keep only what helps: the errors of the branch whose type
 * fits the value, or a single "must be X or Y" when none does.
 */
function collapseAnyOf(errors: ErrorObject[]): ErrorObject[] {
  let remaining = errors;
  const anyOfs = errors
    .filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf')
    .sort((a, b) => a.schemaPath.length - b.schemaPath.length);
  for (const anyOf of anyOfs) {
    if (!remaining.includes(anyOf)) continue;
    const prefix = `${anyOf.schemaPath}/`;
    const inside = (e: ErrorObject): boolean =>
      e.schemaPath.startsWith(prefix) &&
      (e.instancePath === anyOf.instancePath || e.instancePath.startsWith(`${anyOf.instancePath}/`));
    const branches = Array.isArray(anyOf.schema) ? (anyOf.schema as unknown[]) : [];
    const fitting = branches.findIndex(
      (_, i) => !branchMismatched(remaining, `${anyOf.schemaPath}/${i}`, anyOf.instancePath),
    );
    if (fitting >= 0) {
      const keep = `${anyOf.schemaPath}/${fitting}/`;
      remaining = remaining.filter((e) => e !== anyOf && (!inside(e) || e.schemaPath.startsWith(keep)));
    } else {
      const types = branches.map((b) => (isObject(b) ? b['type'] : undefined)).filter((t) => t !== undefined);
      const replacement: ErrorObject = {
        ...anyOf,
        keyword: 'type',
        params: { type: [...new Set(types.flat())] },
      };
      remaining = remaining.filter((e) => !inside(e)).map((e) => (e === anyOf ? replacement : e));
    }
  }
  return remaining;
}

function noun(pointer: string): string {
  if (pointer === '') return 'section';
  return /^\/bindings\/[^/]+\/options(\/|$)/.test(pointer) ? 'option' : 'property';
}

function describe(
  error: ErrorObject,
  all: readonly ErrorObject[],
  show: ShowValue,
): SchemaProblem | undefined {
  const pointer = error.instancePath;
  const params = error.params as Record<string, unknown>;
  const parentSchema = isObject(error.parentSchema) ? error.parentSchema : {};
  switch (error.keyword) {
    case 'required': {
      const missing = String(params['missingProperty']);
      const conditional = error.schemaPath.endsWith('/then/required');
      const when = conditional ? requiredCondition(error, all) : '';
      const message = conditional
        ? `is required${when === '' ? ' when there are no routes' : when}`
        : 'is required';
      return { pointer, anchor: 'key', missing, message };
    }
    case 'additionalProperties': {
      const name = String(params['additionalProperty']);
      const known = isObject(parentSchema['properties']) ? Object.keys(parentSchema['properties']) : [];
      return {
        pointer: `${pointer}/${name.replaceAll('~', '~0').replaceAll('/', '~1')}`,
        anchor: 'key',
        parentPath: true,
        message: `unknown ${noun(pointer)} "${name}"${didYouMean(name, known)}`,
      };
    }
    case 'enum': {
      const allowed = (params['allowedValues'] as unknown[]).map(String);
      if (/^\/bindings\/[^/]+\/type$/.test(pointer)) {
        return {
          pointer,
          anchor: 'value',
          message: `unknown type ${show(pointer, error.data)}; known types: ${allowed.join(', ')}`,
        };
      }
      if (/^\/bindings\/[^/]+\/kind$/.test(pointer)) {
        const binding = all.find(
          (e) => e.keyword === 'if' && e.instancePath === parentPointer(pointer),
        )?.data;
        const type = isObject(binding) ? binding['type'] : undefined;
        // The selector matched the type by its value: a known type name, unquoted as elsewhere.
        const typeName = typeof type === 'string' ? show(`${parentPointer(pointer)}/type`, type) : '';
        return {
          pointer,
          anchor: 'value',
          message: `unknown kind ${show(pointer, error.data)} for type ${unquoted(typeName)}; known kinds: ${allowed.join(', ')}`,
        };
      }
      return { pointer, anchor: 'value', message: `must be one of ${allowed.join(', ')}` };
    }
    case 'const':
      return { pointer, anchor: 'value', message: `must be ${showValue('', params['allowedValue'])}` };
    case 'type':
      if (pointer === '')
        return { pointer, anchor: 'value', message: 'must be a mapping with name and bindings' };
      return { pointer, anchor: 'value', message: `must be ${typePhrase(params['type'])}` };
    case 'pattern': {
      const hint = parentSchema['patternErrorMessage'];
      return {
        pointer,
        anchor: 'value',
        message: typeof hint === 'string' ? hint : `must match ${String(params['pattern'])}`,
      };
    }
    case 'minItems':
    case 'minProperties':
    case 'minLength': {
      const limit = Number(params['limit']);
      const unit =
        error.keyword === 'minItems' ? 'items' : error.keyword === 'minLength' ? 'characters' : 'entries';
      return {
        pointer,
        anchor: 'value',
        message: limit === 1 ? 'must not be empty' : `must have at least ${limit} ${unit}`,
      };
    }
    case 'minimum':
      return { pointer, anchor: 'value', message: `must be at least ${String(params['limit'])}` };
    case 'maximum':
      return { pointer, anchor: 'value', message: `must be at most ${String(params['limit'])}` };
    case 'uniqueItems':
      return {
        pointer,
        anchor: 'value',
        message: `must not repeat items (items ${String(params['j'])} and ${String(params['i'])} are equal)`,
      };
    case 'false schema':
      return { pointer, anchor: 'key', message: `is not allowed${condition(error, all)}` };
    default:
      return { pointer, anchor: 'value', message: error.message ?? 'is invalid' };
  }
}

/** For a property forbidden by an if/then, the if's constants: " when capability is fetch". */
function condition(error: ErrorObject, all: readonly ErrorObject[]): string {
  const thenAt = error.schemaPath.lastIndexOf('/then/');
  if (thenAt < 0) return ' here';
  const ifPath = `${error.schemaPath.slice(0, thenAt)}/if`;
  const owner = all.find(
    (e) =>
      e.keyword === 'if' && e.schemaPath === ifPath && e.instancePath === parentPointer(error.instancePath),
  );
  const when = constants(owner && isObject(owner.parentSchema) ? owner.parentSchema['if'] : undefined);
  return when === '' ? ' here' : when;
}

/** For a property required by an if/then on constants (not on routes): " when type is prometheus". */
function requiredCondition(error: ErrorObject, all: readonly ErrorObject[]): string {
  const ifPath = `${error.schemaPath.slice(0, -'/then/required'.length)}/if`;
  const owner = all.find(
    (e) => e.keyword === 'if' && e.schemaPath === ifPath && e.instancePath === error.instancePath,
  );
  return constants(owner && isObject(owner.parentSchema) ? owner.parentSchema['if'] : undefined);
}

function constants(ifSchema: unknown): string {
  const properties = isObject(ifSchema) && isObject(ifSchema['properties']) ? ifSchema['properties'] : {};
  const parts = Object.entries(properties)
    .map(([name, s]) => (isObject(s) && 'const' in s ? `${name} is ${String(s['const'])}` : ''))
    .filter((p) => p !== '');
  return parts.length > 0 ? ` when ${parts.join(' and ')}` : '';
}

export function validateSchema(data: unknown, show: ShowValue = showValue): SchemaProblem[] {
  const { validate } = compiled();
  if (validate(data)) return [];
  const all = validate.errors ?? [];
  const problems: SchemaProblem[] = [];
  for (const error of collapseAnyOf(all)) {
    if (error.keyword === 'if' || error.keyword === 'propertyNames') continue;
    const propertyName = (error as ErrorObject & { propertyName?: string }).propertyName;
    if (propertyName !== undefined) {
      // A binding name that breaks the naming rule: point at the name itself.
      const described = describe(error, all, show);
      problems.push({
        pointer: `${error.instancePath}/${propertyName.replaceAll('~', '~0').replaceAll('/', '~1')}`,
        anchor: 'key',
        parentPath: true,
        message: `name "${propertyName}" ${described?.message ?? 'is invalid'}`,
      });
      continue;
    }
    const described = describe(error, all, show);
    if (described) problems.push(described);
  }
  return problems;
}
