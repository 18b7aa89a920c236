import { decodeProgress, encodeProgress } from '../http-kafka/etag.ts';
import { expressionsOf } from '../http-kafka/templates.ts';

/** Zilla's default: the id is the stream progress alone. */
export const DEFAULT_EVENT_ID = '${etag}';

/**
 * An `event.id` template compiled both ways: format() writes a message's id, and progressOf()
 * finds the progress again in the Last-Event-ID a reconnecting browser sends, whatever literal
 * text and keys surround it (Zilla's other form is `["${base64(key)}","${etag}"]`).
 */
export interface EventIdFormat {
  format(progress: ReadonlyMap<number, bigint>, key: Buffer | null): string;
  progressOf(lastEventId: string): Map<number, bigint> | undefined;
}

const EXPRESSION = /(\$\{[^}]*\})/;
const PART_PATTERNS: Record<string, string> = {
  etag: '([A-Za-z0-9_-]*)',
  'base64(key)': '[A-Za-z0-9+/=]*',
};

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

export function compileEventId(template: string = DEFAULT_EVENT_ID): EventIdFormat {
  const names = expressionsOf(template);
  for (const name of names)
    if (!(name in PART_PATTERNS))
      throw new Error(`event.id: unknown expression \${${name}}; known: \${etag}, \${base64(key)}`);
  if (names.filter((n) => n === 'etag').length !== 1)
    throw new Error('event.id must contain ${etag} exactly once, or reconnecting clients cannot resume');
  if (/[\r\n\0]/.test(template)) throw new Error('event.id must not contain a line break or NUL');
  const parts = template.split(EXPRESSION).filter((p) => p !== '');
  const source = parts
    .map((part) => {
      const name = EXPRESSION.test(part) ? part.slice(2, -1).trim() : undefined;
      return name === undefined ? escapeRegExp(part) : (PART_PATTERNS[name] ?? '');
    })
    .join('');
  const re = new RegExp(`^${source}$`);
  return {
    format(progress, key) {
      return parts
        .map((part) => {
          const name = EXPRESSION.test(part) ? part.slice(2, -1).trim() : undefined;
          if (name === 'etag') return encodeProgress(progress);
          if (name === 'base64(key)') return key === null ? '' : key.toString('base64');
          return part;
        })
        .join('');
    },
    progressOf(lastEventId) {
      const token = re.exec(lastEventId)?.[1];
      return token === undefined ? undefined : decodeProgress(token);
    },
  };
}
