// Message filters of a cache_client stream, in the shape of Zilla's kafka merged filters: a list
// of filters ORed, each a list of conditions ANDed. Matching runs against records as the store
// returns them (views into its read buffer), so nothing here copies or decodes.

/** Matches any one value in a `headers` sequence. */
export interface SkipOne {
  readonly skip: true;
}

/** Matches any run of values, none included, in a `headers` sequence. */
export interface SkipMany {
  readonly skipMany: true;
}

export type HeaderValuePattern = Buffer | SkipOne | SkipMany;

export type Condition =
  /** The record's key equals this one; null matches records without a key. */
  | { readonly key: Buffer | null }
  /** Some header of that name has exactly this value. */
  | { readonly header: { readonly name: string | Buffer; readonly value: Buffer } }
  /**
   * The values of the headers of that name, in record order, match the pattern as a whole
   * sequence (anchored at both ends; end the pattern with `{skipMany: true}` to match a prefix).
   */
  | {
      readonly headers: { readonly name: string | Buffer; readonly values: readonly HeaderValuePattern[] };
    }
  | { readonly not: Condition };

/** Conditions that must all hold; an empty filter matches every record. */
export type Filter = readonly Condition[];

/** The parts of a record that filters look at. */
export interface FilterSubject {
  readonly key: Buffer | null;
  readonly headers: readonly { readonly name: Buffer; readonly value: Buffer | null }[];
}

/** Bit i of a match result stands for filter i, so a stream takes at most this many filters. */
export const MAX_FILTERS = 32;

type Compiled = (subject: FilterSubject) => boolean;

/**
 * Compiled filters: `match` answers the bitmask of the filters a record matches (bit i for
 * filters[i]), 0 when it matches none. With no filters at all every record passes with mask 0.
 */
export interface FilterSet {
  readonly count: number;
  matches(subject: FilterSubject): boolean;
  match(subject: FilterSubject): number;
}

const EVERYTHING: FilterSet = { count: 0, matches: () => true, match: () => 0 };

export function compileFilters(filters: readonly Filter[] | undefined): FilterSet {
  if (filters === undefined || filters.length === 0) return EVERYTHING;
  if (filters.length > MAX_FILTERS)
    throw new Error(`a stream takes at most ${MAX_FILTERS} filters, got ${filters.length}`);
  const compiled = filters.map((filter, i) => {
    if (!Array.isArray(filter)) throw new Error(`filters[${i}] must be a list of conditions`);
    const conditions = filter.map((condition, j) => compileCondition(condition, `filters[${i}][${j}]`));
    return (subject: FilterSubject): boolean => conditions.every((test) => test(subject));
  });
  return {
    count: compiled.length,
    matches(subject) {
      return compiled.some((test) => test(subject));
    },
    match(subject) {
      let mask = 0;
      for (let i = 0; i < compiled.length; i++) {
        const test = compiled[i];
        if (test !== undefined && test(subject)) mask = (mask | (1 << i)) >>> 0;
      }
      return mask;
    },
  };
}

/** The indexes of the filters a match result names, in ascending order. */
export function matchedIndexes(mask: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < MAX_FILTERS; i++) if ((mask >>> i) & 1) out.push(i);
  return out;
}

function toName(name: string | Buffer, where: string): Buffer {
  if (typeof name === 'string') return Buffer.from(name, 'utf8');
  if (Buffer.isBuffer(name)) return name;
  throw new Error(`${where}: header name must be a string or a Buffer`);
}

function compileCondition(condition: Condition, where: string): Compiled {
  if (typeof condition !== 'object' || condition === null) throw new Error(`${where}: not a condition`);
  const kinds = Object.keys(condition);
  if (kinds.length !== 1)
    throw new Error(`${where}: a condition has exactly one of key, header, headers, not`);
  if ('key' in condition) {
    const key = condition.key;
    if (key === null) return (s) => s.key === null;
    if (!Buffer.isBuffer(key)) throw new Error(`${where}: key must be a Buffer or null`);
    return (s) => s.key !== null && s.key.equals(key);
  }
  if ('header' in condition) {
    const name = toName(condition.header.name, where);
    const value = condition.header.value;
    if (!Buffer.isBuffer(value)) throw new Error(`${where}: header value must be a Buffer`);
    return (s) => s.headers.some((h) => h.value !== null && h.name.equals(name) && h.value.equals(value));
  }
  if ('headers' in condition) {
    const name = toName(condition.headers.name, where);
    const pattern = condition.headers.values.map((v, k) => {
      if (Buffer.isBuffer(v)) return v;
      if ('skipMany' in v && v.skipMany === true) return SKIP_MANY;
      if ('skip' in v && v.skip === true) return SKIP_ONE;
      throw new Error(`${where}: headers.values[${k}] must be a Buffer, {skip: true} or {skipMany: true}`);
    });
    return (s) => {
      const values: (Buffer | null)[] = [];
      for (const h of s.headers) if (h.name.equals(name)) values.push(h.value);
      return matchSequence(pattern, values);
    };
  }
  if ('not' in condition) {
    const inner = compileCondition(condition.not, `${where}.not`);
    return (s) => !inner(s);
  }
  throw new Error(`${where}: unknown condition ${JSON.stringify(kinds[0])}`);
}

const SKIP_ONE = Symbol('skip');
const SKIP_MANY = Symbol('skipMany');
type Step = Buffer | typeof SKIP_ONE | typeof SKIP_MANY;

// Glob matching with skipMany as `*` and skip as `?`: on a mismatch only the latest skipMany
// stretches by one value, which is enough for this pattern language and keeps the cost at
// O(pattern × values) rather than exponential in the number of skipMany steps.
function matchSequence(pattern: readonly Step[], values: readonly (Buffer | null)[]): boolean {
  let p = 0;
  let v = 0;
  let starP = -1;
  let starV = 0;
  while (v < values.length) {
    const step = pattern[p];
    if (step === SKIP_MANY) {
      starP = p++;
      starV = v;
    } else if (step !== undefined && stepMatches(step, values[v] ?? null)) {
      p++;
      v++;
    } else if (starP >= 0) {
      p = starP + 1;
      v = ++starV;
    } else return false;
  }
  while (pattern[p] === SKIP_MANY) p++;
  return p === pattern.length;
}

function stepMatches(step: Buffer | typeof SKIP_ONE, value: Buffer | null): boolean {
  return step === SKIP_ONE || (value !== null && value.equals(step));
}
