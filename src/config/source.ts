import { LineCounter, isAlias, isMap, isScalar, isSeq, parse, parseDocument } from 'yaml';
import type { Document, Node } from 'yaml';

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
}

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

export function readSource(text: string, env: NodeJS.ProcessEnv): Source {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true });
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
  const source: Source = {
    data: undefined,
    locations: new Map(),
    yamlErrors: problemsOf(doc.errors, 'invalid YAML: '),
    yamlWarnings: problemsOf(doc.warnings, 'YAML: '),
    envErrors: [],
  };
  if (source.yamlErrors.length > 0) return source;
  const root = doc.contents;
  source.locations.set('', { segments: [], value: root?.range ? at(root.range[0]) : { line: 1, column: 1 } });
  source.data = root === null ? null : new Converter(doc, env, at, source).convert(root, [], new Set());
  return source;
}

class Converter {
  readonly doc: Document;
  readonly env: NodeJS.ProcessEnv;
  readonly at: (offset: number) => Position;
  readonly source: Source;

  constructor(doc: Document, env: NodeJS.ProcessEnv, at: (offset: number) => Position, source: Source) {
    this.doc = doc;
    this.env = env;
    this.at = at;
    this.source = source;
  }

  /** Inside an alias, every position is the alias's: the anchored node belongs to another path. */
  aliasPosition: Position | undefined;

  position(node: Node | null | undefined): Position | undefined {
    if (this.aliasPosition) return this.aliasPosition;
    return node?.range ? this.at(node.range[0]) : undefined;
  }

  convert(node: Node, segments: Segment[], active: Set<Node>): unknown {
    if (isAlias(node)) {
      const target = node.resolve(this.doc);
      // A recursive alias has no finite plain-data form; treat it as absent rather than loop.
      if (!target || active.has(target)) return null;
      const outer = this.aliasPosition;
      this.aliasPosition = this.position(node);
      active.add(target);
      const value = this.convert(target, segments, active);
      active.delete(target);
      this.aliasPosition = outer;
      return value;
    }
    if (isMap(node)) {
      const out: Record<string, unknown> = {};
      for (const pair of node.items) {
        const keyNode = pair.key as Node | null;
        const key = isScalar(keyNode) ? String(keyNode.value) : String(keyNode ?? '');
        const child = [...segments, key];
        const valueNode = pair.value as Node | null;
        const keyPosition = this.position(keyNode) ?? this.position(node) ?? { line: 1, column: 1 };
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
      return value;
    });
    if (unset || !substituted || !plain) return result;
    // Zilla substitutes in the text before parsing, so an unquoted `port: ${{env.PORT}}` is a number there;
    // re-resolving plain scalars keeps such files meaning the same here.
    try {
      const typed: unknown = parse(result);
      if (typeof typed === 'number' || typeof typed === 'boolean') return typed;
    } catch {
      // Not a scalar on its own; it stays a string.
    }
    return result;
  }
}
