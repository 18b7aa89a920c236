/** One `${{env.NAME}}` expression of a config and the text it was replaced with. */
export interface Substitution {
  /** The expression as kgate prints it: `${{env.NAME}}`. */
  readonly reference: string;
  readonly value: string;
}

/**
 * Shorter values are too common to look for in free text (a one-letter value would garble every
 * line); the loader's own diagnostics never show substituted values whatever their length.
 */
export const MIN_REDACTED_LENGTH = 4;

/**
 * The parts of a value that errors quote on their own: each entry of a comma-separated list (one
 * variable often carries every broker), and the host of a `host:port` (a failed name lookup names
 * only the host).
 */
function quotedAlone(value: string): string[] {
  const parts: string[] = [];
  for (const entry of value.split(',').map((e) => e.trim())) {
    if (entry !== value) parts.push(entry);
    const host = /^\[?([^\]]+?)\]?:\d+$/.exec(entry)?.[1];
    if (host !== undefined) parts.push(host);
  }
  return parts;
}

/**
 * Puts `${{env.NAME}}` back wherever the value substituted for it appears in text meant for
 * people: log lines, error messages, status answers. Config diagnostics name the file's text
 * themselves; this is the net under everything else that may echo an option (a binding's error
 * quoting a server address that carried credentials, say).
 */
export class Redactor {
  /** Longest first, so that a value containing another is replaced whole. */
  #values: Substitution[] = [];

  constructor(substitutions: readonly Substitution[] = []) {
    this.add(substitutions);
  }

  /** Adds the substitutions of another config (a reload), keeping those already known. */
  add(substitutions: readonly Substitution[]): void {
    const known = new Set(this.#values.map((s) => `${s.reference}\n${s.value}`));
    for (const { reference, value } of substitutions) {
      for (const part of [value, ...quotedAlone(value)]) {
        if (part.length < MIN_REDACTED_LENGTH || known.has(`${reference}\n${part}`)) continue;
        known.add(`${reference}\n${part}`);
        this.#values.push({ reference, value: part });
      }
    }
    this.#values.sort((a, b) => b.value.length - a.value.length);
  }

  text(text: string): string {
    let out = text;
    for (const { reference, value } of this.#values)
      if (out.includes(value)) out = out.replaceAll(value, reference);
    return out;
  }

  /** A JSON-able value with every string in it redacted; keys and other types stay as they are. */
  value(value: unknown): unknown {
    if (typeof value === 'string') return this.text(value);
    if (Array.isArray(value)) return value.map((item: unknown) => this.value(item));
    if (typeof value === 'object' && value !== null) {
      const out: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(value)) out[key] = this.value(item);
      return out;
    }
    return value;
  }

  /**
   * One JSON document (a log line, a status answer) redacted inside its strings only, so that it
   * stays valid JSON; returned as it was when it holds no substituted value.
   */
  json(text: string): string {
    // A value appears in JSON as its escaped form; look for that before parsing anything.
    if (!this.#values.some(({ value }) => text.includes(JSON.stringify(value).slice(1, -1)))) return text;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return this.text(text);
    }
    const trailing = /\s*$/.exec(text)?.[0] ?? '';
    return JSON.stringify(this.value(parsed)) + trailing;
  }

  /** An error to show in place of `error`: its message, stack and cause's message redacted. */
  error(error: unknown): Error {
    if (!(error instanceof Error)) return new Error(this.text(String(error)));
    const cause: unknown = error.cause;
    const redacted = new Error(
      this.text(error.message),
      cause instanceof Error ? { cause: new Error(this.text(cause.message)) } : {},
    );
    redacted.name = error.name;
    if (error.stack !== undefined) redacted.stack = this.text(error.stack);
    return redacted;
  }
}
