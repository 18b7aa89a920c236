/**
 * Patterns matched without backtracking: globs (topics, header values, SNI names), path templates
 * and SSE event id templates. Their subjects come from clients, and a JavaScript RegExp backtracks:
 * `^.*a.*b.*c$` takes time cubic in the length of a subject that almost matches, `^([^/]+)-([^/]+)$`
 * quadratic. A pattern here compiles to a small program run as a Thompson NFA that carries its
 * captures (a "Pike VM"): each code unit of the subject advances every live thread once, and at
 * most one thread sits on an instruction, so a match costs O(subject length × program length)
 * whatever the subject. Threads are kept in priority order, so the captures are those a
 * backtracking engine would report: each repetition takes as much as it can and still lets the
 * whole pattern match.
 */

/**
 * Which code units (UTF-16, as a RegExp without the `u` flag sees them) a class admits: each ASCII
 * unit on its own, every other unit alike. A table rather than a function, so a step costs a load.
 */
export interface CharClass {
  /** 129 entries: one per ASCII code unit, then one for every unit above 127. */
  readonly table: Uint8Array;
}

export function charClass(ascii: (code: number) => boolean, nonAscii: boolean): CharClass {
  const table = new Uint8Array(129);
  for (let code = 0; code < 128; code++) table[code] = ascii(code) ? 1 : 0;
  table[128] = nonAscii ? 1 : 0;
  return { table };
}

export type Piece =
  /** Exactly this text (case-folded when the pattern ignores case). */
  | { readonly literal: string }
  /** One code unit of the class. */
  | { readonly one: CharClass }
  /** A run of code units of the class, at least `min` long, as long as the rest allows; captured if asked. */
  | { readonly many: CharClass; readonly min: 0 | 1; readonly capture?: boolean };

export interface Pattern {
  /** The captured runs in pattern order, or undefined when the pattern does not match the whole subject. */
  exec(subject: string): string[] | undefined;
  test(subject: string): boolean;
}

export const ANY: CharClass = charClass(() => true, true);

const CHAR = 0;
const CLASS = 1;
const SPLIT = 2;
const JUMP = 3;
const SAVE = 4;
const MATCH = 5;

/**
 * How `/i` compares code units without the `u` flag (ECMA-262 Canonicalize): by upper case, unless
 * that takes more than one code unit or turns a non-ASCII unit into an ASCII one.
 */
function fold(code: number): number {
  if (code < 128) return code >= 97 && code <= 122 ? code - 32 : code;
  const upper = String.fromCharCode(code).toUpperCase();
  if (upper.length !== 1) return code;
  const folded = upper.charCodeAt(0);
  return folded < 128 ? code : folded;
}

/**
 * What follows an instruction without reading a code unit, in priority order: the instructions
 * that read one (or MATCH) reachable through splits, jumps and saves, each with the capture slots
 * set on the way there. Worked out once per pattern, so a step of the match only looks them up.
 */
interface Closure {
  readonly targets: Int32Array;
  readonly saves: readonly Int32Array[];
}

interface Program {
  readonly op: Uint8Array;
  /** CHAR: the code unit; CLASS: where its table starts in `tables`; SPLIT, JUMP: the (preferred) target; SAVE: the slot. */
  readonly arg: Int32Array;
  /** The classes' tables end to end, 129 entries each. */
  readonly tables: Uint8Array;
  /** By instruction. */
  readonly closures: readonly Closure[];
  readonly slots: number;
}

function assemble(pieces: readonly Piece[], ignoreCase: boolean): Program {
  const op: number[] = [];
  const arg: number[] = [];
  const alt: number[] = [];
  const classes: CharClass[] = [];
  let slots = 0;
  const emit = (code: number, a = 0, b = 0): number => {
    op.push(code);
    arg.push(a);
    alt.push(b);
    return op.length - 1;
  };
  const classIndex = (c: CharClass): number => {
    let known = classes.indexOf(c);
    if (known < 0) known = classes.push(c) - 1;
    return known * 129;
  };
  for (const piece of pieces) {
    if ('literal' in piece) {
      for (let i = 0; i < piece.literal.length; i++) {
        const code = piece.literal.charCodeAt(i);
        emit(CHAR, ignoreCase ? fold(code) : code);
      }
    } else if ('one' in piece) {
      emit(CLASS, classIndex(piece.one));
    } else {
      const c = classIndex(piece.many);
      if (piece.capture === true) emit(SAVE, slots++);
      if (piece.min === 1) emit(CLASS, c);
      // loop: prefer one more code unit of the class, else go on with the rest of the pattern.
      const loop = emit(SPLIT, 0, 0);
      emit(CLASS, c);
      emit(JUMP, loop);
      arg[loop] = loop + 1;
      alt[loop] = loop + 3;
      if (piece.capture === true) emit(SAVE, slots++);
    }
  }
  emit(MATCH);
  const closureOf = (start: number): Closure => {
    const targets: number[] = [];
    const saves: Int32Array[] = [];
    const visited = new Set<number>();
    const walk = (pc: number, saved: readonly number[]): void => {
      if (visited.has(pc)) return;
      visited.add(pc);
      const code = op[pc];
      if (code === JUMP) walk(arg[pc] ?? 0, saved);
      else if (code === SPLIT) {
        walk(arg[pc] ?? 0, saved);
        walk(alt[pc] ?? 0, saved);
      } else if (code === SAVE) walk(pc + 1, [...saved, arg[pc] ?? 0]);
      else {
        targets.push(pc);
        saves.push(Int32Array.from(saved));
      }
    };
    walk(start, []);
    return { targets: Int32Array.from(targets), saves };
  };
  return {
    op: Uint8Array.from(op),
    arg: Int32Array.from(arg),
    tables: Uint8Array.from(classes.flatMap((c) => [...c.table])),
    closures: op.map((_, pc) => closureOf(pc)),
    slots,
  };
}

/**
 * The threads at one position of the subject, in priority order, at most one per instruction. A
 * thread's capture slots live in one row of `captures`, so stepping allocates nothing.
 */
const MAX_GENERATION = 0x7fffffff;

class Threads {
  readonly pcs: Int32Array;
  readonly captures: Int32Array;
  count = 0;
  readonly #seen: Int32Array;
  readonly #slots: number;
  #generation = 0;

  constructor(size: number, slots: number) {
    this.pcs = new Int32Array(size);
    this.captures = new Int32Array(size * slots);
    this.#seen = new Int32Array(size).fill(-1);
    this.#slots = slots;
  }

  reset(): void {
    this.count = 0;
    // The stamps are Int32: before the count would pass what they hold, every one is cleared.
    if (this.#generation === MAX_GENERATION) {
      this.#seen.fill(-1);
      this.#generation = 0;
    } else this.#generation++;
  }

  /**
   * Adds the threads `closure` leads to from a thread whose captures are `from[offset...]`, at
   * position `at`, skipping instructions a thread of higher priority holds already.
   */
  follow(closure: Closure, from: Int32Array, offset: number, at: number): void {
    const slots = this.#slots;
    const { targets, saves } = closure;
    for (let k = 0; k < targets.length; k++) {
      const pc = targets[k] ?? 0;
      if (this.#seen[pc] === this.#generation) continue;
      this.#seen[pc] = this.#generation;
      const row = this.count * slots;
      for (let i = 0; i < slots; i++) this.captures[row + i] = from[offset + i] ?? 0;
      const saved = saves[k];
      if (saved !== undefined)
        for (let i = 0; i < saved.length; i++) this.captures[row + (saved[i] ?? 0)] = at;
      this.pcs[this.count] = pc;
      this.count++;
    }
  }
}

class CompiledPattern implements Pattern {
  readonly #program: Program;
  readonly #ignoreCase: boolean;
  /** Set when the pattern is plain text: matched by comparison. */
  readonly #text: string | undefined;
  /**
   * The two thread lists a match steps between, kept from one match to the next: a match runs
   * to its end within one call, and a route table matches every request's path, so allocating
   * them per match cost more than the match itself.
   */
  readonly #lists: readonly [Threads, Threads];
  /** The captures of the first thread: none set yet. */
  readonly #unset: Int32Array;

  constructor(pieces: readonly Piece[], ignoreCase: boolean) {
    this.#ignoreCase = ignoreCase;
    this.#program = assemble(pieces, ignoreCase);
    this.#text = pieces.every((p) => 'literal' in p)
      ? pieces.map((p) => ('literal' in p ? p.literal : '')).join('')
      : undefined;
    const { op, slots } = this.#program;
    this.#lists = [new Threads(op.length, slots), new Threads(op.length, slots)];
    this.#unset = new Int32Array(slots);
  }

  test(subject: string): boolean {
    return this.#run(subject) !== undefined;
  }

  exec(subject: string): string[] | undefined {
    const slots = this.#run(subject);
    if (slots === undefined) return undefined;
    const out: string[] = [];
    for (let i = 0; i + 1 < slots.length; i += 2) out.push(subject.slice(slots[i] ?? 0, slots[i + 1] ?? 0));
    return out;
  }

  /** The capture slots of the match of highest priority, or undefined. */
  #run(subject: string): Int32Array | undefined {
    const text = this.#text;
    if (text !== undefined) return this.#equals(text, subject) ? new Int32Array(0) : undefined;
    const { op, arg, tables, closures, slots } = this.#program;
    let current = this.#lists[0];
    let next = this.#lists[1];
    current.reset();
    const start = closures[0];
    if (start !== undefined) current.follow(start, this.#unset, 0, 0);
    const ignoreCase = this.#ignoreCase;
    for (let at = 0; at < subject.length; at++) {
      if (current.count === 0) return undefined;
      const code = subject.charCodeAt(at);
      const folded = ignoreCase ? fold(code) : code;
      const column = code < 128 ? code : 128;
      next.reset();
      for (let t = 0; t < current.count; t++) {
        const pc = current.pcs[t] ?? 0;
        const kind = op[pc];
        // MATCH before the end is no match: patterns are anchored at both ends.
        const takes =
          kind === CHAR ? arg[pc] === folded : kind === CLASS && tables[(arg[pc] ?? 0) + column] === 1;
        const closure = takes ? closures[pc + 1] : undefined;
        if (closure !== undefined) next.follow(closure, current.captures, t * slots, at + 1);
      }
      const stepped = next;
      next = current;
      current = stepped;
    }
    for (let t = 0; t < current.count; t++)
      if (op[current.pcs[t] ?? 0] === MATCH) return current.captures.slice(t * slots, (t + 1) * slots);
    return undefined;
  }

  #equals(text: string, subject: string): boolean {
    if (!this.#ignoreCase) return text === subject;
    if (text.length !== subject.length) return false;
    for (let i = 0; i < text.length; i++)
      if (fold(text.charCodeAt(i)) !== fold(subject.charCodeAt(i))) return false;
    return true;
  }
}

/** Compiles pieces into a pattern that must match a whole subject. */
export function compilePattern(
  pieces: readonly Piece[],
  options: { readonly ignoreCase?: boolean } = {},
): Pattern {
  return new CompiledPattern(pieces, options.ignoreCase === true);
}
