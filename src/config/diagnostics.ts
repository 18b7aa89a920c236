import { basename } from 'node:path';
import { KgateError } from '../engine/errors.ts';

/** One problem found in a configuration file, located at a YAML node. */
export interface ConfigDiagnostic {
  /** The file as given to the loader. */
  file: string;
  /** 1-based; 0 when the problem is not inside the file (it could not be read). */
  line: number;
  /** 1-based; 0 when `line` is 0. */
  column: number;
  /** Dotted path of the offending value, such as `bindings.kafka_client.options.servers[0]`; empty for the whole file. */
  path: string;
  message: string;
}

export function formatDiagnostic(d: ConfigDiagnostic): string {
  const where = d.line > 0 ? `${basename(d.file)}:${d.line}:${d.column}` : `${basename(d.file)}:`;
  return d.path === '' ? `${where} ${d.message}` : `${where} ${d.path}: ${d.message}`;
}

export class ConfigError extends KgateError {
  readonly diagnostics: ConfigDiagnostic[];

  constructor(diagnostics: ConfigDiagnostic[]) {
    super('KGATE_CONFIG_INVALID', diagnostics.map(formatDiagnostic).join('\n'));
    this.diagnostics = diagnostics;
  }
}

/** Orders by position so the output reads top to bottom, and drops repeats reported by several checks. */
export function sortDiagnostics(diagnostics: readonly ConfigDiagnostic[]): ConfigDiagnostic[] {
  const seen = new Set<string>();
  const unique: ConfigDiagnostic[] = [];
  for (const d of diagnostics) {
    const key = formatDiagnostic(d);
    if (!seen.has(key)) {
      seen.add(key);
      unique.push(d);
    }
  }
  return unique.sort(
    (a, b) =>
      a.line - b.line ||
      a.column - b.column ||
      (a.path < b.path ? -1 : a.path > b.path ? 1 : 0) ||
      (a.message < b.message ? -1 : a.message > b.message ? 1 : 0),
  );
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/** The closest candidate, if it is close enough to be a plausible typo rather than a different name. */
export function closest(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  const limit = Math.max(1, Math.floor(name.length / 3));
  for (const candidate of candidates) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance <= limit && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

export function didYouMean(name: string, candidates: Iterable<string>): string {
  const suggestion = closest(name, candidates);
  return suggestion === undefined ? '' : `; did you mean "${suggestion}"?`;
}
