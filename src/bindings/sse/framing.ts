import type { SseEvent } from '../north.ts';

/**
 * `text/event-stream` framing: events, their fields and comments as the text that goes out. Fields
 * are written as Zilla's sse binding writes them, the value right after the colon (`data:x`,
 * `id:7`). A reader drops one space after the colon, so a value that starts with a space gets one
 * more there (`data:  x`): written without it, the browser would lose the value's first character.
 */

const LINE_BREAK = /\r\n|\r|\n/;

/** One `name:value` line; `value` holds no line break. */
export function formatField(name: string, value: string): string {
  return value.charCodeAt(0) === 0x20 ? `${name}: ${value}\n` : `${name}:${value}\n`;
}

/**
 * The `data:` lines of an event, split on every kind of line break since a bare CR ends a line for
 * the browser too. An empty `data` gives an event browsers do not dispatch (the format has no way
 * to say "empty"), but it does move their last event ID along.
 */
export function formatData(data: string): string {
  // Most payloads are one line: no split, no array.
  if (!LINE_BREAK.test(data)) return formatField('data', data);
  let text = '';
  for (const line of data.split(LINE_BREAK)) text += formatField('data', line);
  return text;
}

/** An `id:` line; the id must hold no line break or NUL. */
export function formatId(id: string): string {
  if (LINE_BREAK.test(id) || id.includes('\0'))
    throw new TypeError('an event id must not contain a line break or NUL');
  return formatField('id', id);
}

/** One event; the blank line at its end dispatches it. */
export function formatEvent(event: SseEvent): string {
  let text = event.id === undefined ? '' : formatId(event.id);
  if (event.type !== undefined) {
    if (LINE_BREAK.test(event.type)) throw new TypeError('an event type must not contain a line break');
    text += formatField('event', event.type);
  }
  return `${text}${formatData(event.data)}\n`;
}

export function formatComment(comment: string): string {
  return comment
    .split(LINE_BREAK)
    .map((line) => (line === '' ? ':\n' : `: ${line}\n`))
    .join('');
}
