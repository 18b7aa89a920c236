import { LineCounter, isAlias, isMap, isScalar, isSeq, parse, parseDocument, visit } from 'yaml';
import type { Alias, Document, Node } from 'yaml';
import type { Substitution } from './redact.ts';

export type Segment = string | number;

export interface Position {
  line: number;
  column: number;
}

/** Where a value sits in the file: its own node, and the key that names it when it is a mapping entry. */
export interface Located {
  segments: Segment[];
  value: Position;
  key?: Position;
}

export interface SourceProblem {
  pointer: string;
  position: Position;
  message: string;
}

export interface Source {
  /** The document as plain data, with `${{env.NAME}}` already substituted. */
  data: unknown;
  /** JSON pointer (as ajv reports instance paths) to location. */
  locations: Map<string, Located>;
  yamlErrors: SourceProblem[];
  yamlWarnings: SourceProblem[];
  envErrors: SourceProblem[];
  /**
   * By JSON pointer, each scalar that had `${{env.NAME}}` substituted into it, as written in the
   * file: what diagnostics show instead of the value, which may be a secret.
   */
  written: Map<string, string>;
  /** Every expression substituted into a string, and its value, for redacting other output. */
  substitutions: Substitution[];
}

/**
 * What the loader accepts at most. These bound what a hostile or mistaken file can cost (a YAML alias
 * bomb of a few hundred bytes otherwise expands to billions of nodes) and sit far above any config
 * kgate serves, so they are constants rather than options: a file past one is refused with a
 * diagnostic naming the limit, at the place it was crossed.
 */
export const CONFIG_LIMITS = {
  /**
   * Size of the file. The yaml library parses some 15-30 µs per node on a slow core, so the
   * largest file costs a reload at most about two seconds of event loop.
   */
  maxBytes: 256 * 1024,
  /** Mappings and lists inside one another, counted from the top of the document. */
  maxDepth: 64,
  /**
   * Nodes produced by following aliases, counted over the whole document: like the yaml library's
   * `maxAliasCount`, which its own conversion applies but this one, keeping positions, does not use.
   */
  maxAliasNodes: 10_000,
  /** Diagnostics reported for one file; past them, one line says how many more there are. */
  maxDiagnostics: 100,
} as const;

// Zilla's expression syntax; other `${...}` forms (`${params.id}`, `${etag}`) are templates evaluated per request.
const ENV_EXPRESSION = /\$\{\{\s*env\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

export function pointerOf(segments: readonly Segment[]): string {
  return segments.map((s) => '/' + String(s).replaceAll('~', '~0').replaceAll('/', '~1')).join('');
}

export function displayPath(segments: readonly Segment[]): string {
  let out = '';
  for (const segment of segments) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

function yamlMessage(message: string): string {
  // The library appends "at line L, column C:" and a code frame; the position is reported separately.
  const cut = message.indexOf(' at line ');
  return cut >= 0 ? message.slice(0, cut) : message;
}

/** A bound of CONFIG_LIMITS crossed: conversion stops there, and the file is refused. */
class LimitExceeded extends Error {
  readonly position: Position;

  constructor(message: string, position: Position) {
    super(message);
    this.position = position;
  }
}

export function readSource(text: string, env: NodeJS.ProcessEnv): Source {
  const source: Source = {
    data: undefined,
    locations: new Map(),
    yamlErrors: [],
    yamlWarnings: [],
    envErrors: [],
    written: new Map(),
    substitutions: [],
  };
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > CONFIG_LIMITS.maxBytes) {
    source.yamlErrors.push({
      pointer: '',
      position: { line: 1, column: 1 },
      message: `file is ${bytes} bytes, more than the loader's limit of ${CONFIG_LIMITS.maxBytes} bytes`,
    });
    return source;
  }
  const lineCounter = new LineCounter();
  // The library finds a repeated key by comparing it with every key before it, which a mapping of
  // many keys makes quadratic; the conversion below finds repeats with a set instead.
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: false });
  const at = (offset: number): Position => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  const problemsOf = (list: typeof doc.errors, prefix: string): SourceProblem[] =>
    list.map((e) => ({
      pointer: '',
      position: e.linePos ? { line: e.linePos[0].line, column: e.linePos[0].col } : at(e.pos[0]),
      message: prefix + yamlMessage(e.message),
    }));
  source.yamlErrors = problemsOf(doc.errors, 'invalid YAML: ');
  source.yamlWarnings = problemsOf(doc.warnings, 'YAML: ');
  if (source.yamlErrors.length > 0) return source;
  const root = doc.contents;
  source.locations.set('', { segments: [], value: root?.range ? at(root.range[0]) : { line: 1, column: 1 } });
  const converter = new Converter(doc, env, at, source);
  let refusal: SourceProblem[] = [];
  try {
    source.data = root === null ? null : converter.convert(root, [], new Set());
    refusal = converter.repeatedKeys;
  } catch (error) {
    if (!(error instanceof LimitExceeded)) throw error;
    refusal = [{ pointer: '', position: error.position, message: error.message }];
  }
  if (refusal.length > 0) {
    // A file the YAML rules or a limit refuse is no config; nothing converted from it is reported.
    source.data = undefined;
    source.locations = new Map();
    source.envErrors = [];
    source.written = new Map();
    source.substitutions = [];
    source.yamlErrors = refusal;
  }
  return source;
}

/**
 * Each alias's target, found in one pass: the last node before the alias that carries its anchor,
 * as YAML defines it. The library's `Alias.resolve` walks the whole document for every call, which a
 * file of many aliases turns into quadratic work.
 */
function aliasTargets(doc: Document): Map<Alias, Node> {
  const anchors = new Map<string, Node>();
  const targets = new Map<Alias, Node>();
  visit(doc, {
    Node(_key, node) {
      if (isAlias(node)) {
        const target = anchors.get(node.source);
        if (target !== undefined) targets.set(node, target);
      } else if (node.anchor !== undefined) anchors.set(node.anchor, node);
    },
  });
  return targets;
}

class Converter {
  readonly doc: Document;
  readonly env: NodeJS.ProcessEnv;
  readonly at: (offset: number) => Position;
  readonly source: Source;
  readonly targets: Map<Alias, Node>;
  /** Nodes converted inside an alias so far; CONFIG_LIMITS.maxAliasNodes bounds it. */
  aliasNodes = 0;
  /** The alias being expanded, outermost: where a limit crossed inside it is reported. */
  outerAlias: Alias | undefined;
  /** Keys that a mapping repeats, which YAML does not allow. */
  readonly repeatedKeys: SourceProblem[] = [];

  constructor(doc: Document, env: NodeJS.ProcessEnv, at: (offset: number) => Position, source: Source) {
    this.doc = doc;
    this.env = env;
    this.at = at;
    this.source = source;
    this.targets = aliasTargets(doc);
  }

  /** Inside an alias, every position is the alias's: the anchored node belongs to another path. */
  aliasPosition: Position | undefined;

  position(node: Node | null | undefined): Position | undefined {
    if (this.aliasPosition) return this.aliasPosition;
    return node?.range ? this.at(node.range[0]) : undefined;
  }

  /** Counts one node against the bounds before it is converted. */
  enter(node: Node, segments: Segment[]): void {
    if (segments.length > CONFIG_LIMITS.maxDepth) {
      throw new LimitExceeded(
        `nested more than ${CONFIG_LIMITS.maxDepth} levels deep, the loader's limit`,
        this.position(node) ?? { line: 1, column: 1 },
      );
    }
    if (this.outerAlias !== undefined && ++this.aliasNodes > CONFIG_LIMITS.maxAliasNodes) {
      throw new LimitExceeded(
        `aliases expand to more than ${CONFIG_LIMITS.maxAliasNodes} nodes, the loader's limit (here: *${this.outerAlias.source})`,
        this.aliasPosition ?? { line: 1, column: 1 },
      );
    }
  }

  convert(node: Node, segments: Segment[], active: Set<Node>): unknown {
    this.enter(node, segments);
    if (isAlias(node)) {
      const target = this.targets.get(node);
      // A recursive alias has no finite plain-data form; treat it as absent rather than loop.
      if (!target || active.has(target)) return null;
      const outer = this.aliasPosition;
      const outerAlias = this.outerAlias;
      this.aliasPosition = this.position(node);
      this.outerAlias = outerAlias ?? node;
      active.add(target);
      const value = this.convert(target, segments, active);
      active.delete(target);
      this.aliasPosition = outer;
      this.outerAlias = outerAlias;
      return value;
    }
    if (isMap(node)) {
      const out: Record<string, unknown> = {};
      const keys = new Set<string>();
      for (const pair of node.items) {
        const keyNode = pair.key as Node | null;
        const key = isScalar(keyNode) ? String(keyNode.value) : String(keyNode ?? '');
        const child = [...segments, key];
        const valueNode = pair.value as Node | null;
        const keyPosition = this.position(keyNode) ?? this.position(node) ?? { line: 1, column: 1 };
        if (keys.has(key)) {
          this.repeatedKeys.push({
            pointer: '',
            position: keyPosition,
            message: 'invalid YAML: Map keys must be unique',
          });
        }
        keys.add(key);
        const valuePosition =
          valueNode && !(isScalar(valueNode) && valueNode.value === null)
            ? this.position(valueNode)
            : undefined;
        this.source.locations.set(pointerOf(child), {
          segments: child,
          value: valuePosition ?? keyPosition,
          key: keyPosition,
        });
        out[key] = valueNode === null ? null : this.convert(valueNode, child, active);
      }
      return out;
    }
    if (isSeq(node)) {
      return node.items.map((item, index) => {
        const child = [...segments, index];
        const itemNode = item as Node | null;
        const position = this.position(itemNode) ?? this.position(node) ?? { line: 1, column: 1 };
        this.source.locations.set(pointerOf(child), { segments: child, value: position });
        return itemNode === null ? null : this.convert(itemNode, child, active);
      });
    }
    if (isScalar(node)) {
      if (typeof node.value !== 'string') return node.value;
      return this.substitute(node.value, node.type === 'PLAIN', segments, this.position(node));
    }
    return null;
  }

  substitute(text: string, plain: boolean, segments: Segment[], position: Position | undefined): unknown {
    let substituted = false;
    let unset = false;
    const used: Substitution[] = [];
    const result = text.replace(ENV_EXPRESSION, (expression, name: string) => {
      const value = this.env[name];
      if (value === undefined) {
        unset = true;
        this.source.envErrors.push({
          pointer: pointerOf(segments),
          position: position ?? { line: 1, column: 1 },
          message: `environment variable ${name} is not set`,
        });
        return expression;
      }
      substituted = true;
      used.push({ reference: `\${{env.${name}}}`, value });
      return value;
    });
    if (substituted) this.source.written.set(pointerOf(segments), text);
    const typed = unset || !substituted || !plain ? result : typedScalar(result);
    // A number or a boolean says nothing secret and is everywhere in log lines; strings are redacted.
    if (typeof typed === 'string') this.source.substitutions.push(...used);
    return typed;
  }
}

/**
 * Zilla substitutes in the text before parsing, so an unquoted `port: ${{env.PORT}}` is a number
 * there; re-resolving plain scalars keeps such files meaning the same here.
 */
function typedScalar(text: string): unknown {
  // A number or a boolean is short; longer text is not parsed as a YAML document of its own.
  if (text.length > 64) return text;
  try {
    const typed: unknown = parse(text);
    if (typeof typed === 'number' || typeof typed === 'boolean') return typed;
  } catch {
    // Not a scalar on its own; it stays a string.
  }
  return text;
}
