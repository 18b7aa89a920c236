export interface SseMessage {
  id?: string;
  type?: string;
  data: string;
}

/**
 * Splits `text/event-stream` text into events as a browser reads it: comment lines skipped, one
 * space after the colon dropped, data lines joined with `\n`. A block with at least one data line
 * (an empty one included) is an event; chunks may end anywhere, even inside a line.
 */
export class EventStreamParser {
  #buffer = '';

  /** The events completed by `chunk`, in order. */
  push(chunk: string): SseMessage[] {
    this.#buffer += chunk;
    const events: SseMessage[] = [];
    let end: number;
    while ((end = this.#buffer.indexOf('\n\n')) >= 0) {
      const block = this.#buffer.slice(0, end);
      this.#buffer = this.#buffer.slice(end + 2);
      const event: { id?: string; type?: string } = {};
      const data: string[] = [];
      for (const line of block.split('\n')) {
        const colon = line.indexOf(':');
        if (colon === 0) continue;
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'id') event.id = value;
        else if (field === 'event') event.type = value;
        else if (field === 'data') data.push(value);
      }
      if (data.length > 0) events.push({ ...event, data: data.join('\n') });
    }
    return events;
  }
}
