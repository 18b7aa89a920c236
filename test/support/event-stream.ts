import { once } from 'node:events';
import { request as httpRequest, type IncomingMessage } from 'node:http';

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

/** An open `text/event-stream` response: the events parsed so far, and a way to wait for more. */
export interface EventStream {
  readonly events: SseMessage[];
  /** The first `count` events, once they arrived; fails after `timeoutMs`. */
  waitFor(count: number, timeoutMs?: number): Promise<SseMessage[]>;
  close(): void;
}

/** GETs `path` on a loopback port as an EventSource would, resuming from `lastEventId` if given. */
export async function openEventStream(
  port: number,
  path: string,
  lastEventId?: string,
): Promise<EventStream> {
  const req = httpRequest({
    host: '127.0.0.1',
    port,
    path,
    agent: false,
    headers: {
      accept: 'text/event-stream',
      ...(lastEventId === undefined ? {} : { 'last-event-id': lastEventId }),
    },
  });
  req.end();
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  if (res.statusCode !== 200 || !/^text\/event-stream/.test(res.headers['content-type'] ?? '')) {
    req.destroy();
    throw new Error(`${path} answered ${res.statusCode ?? '?'} ${res.headers['content-type'] ?? ''}`);
  }
  const events: SseMessage[] = [];
  const parser = new EventStreamParser();
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => events.push(...parser.push(chunk)));
  return {
    events,
    async waitFor(count: number, timeoutMs = 20_000): Promise<SseMessage[]> {
      const deadline = Date.now() + timeoutMs;
      while (events.length < count) {
        if (Date.now() > deadline)
          throw new Error(`only ${events.length} of ${count} events: ${JSON.stringify(events)}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      return events.slice(0, count);
    },
    close: () => req.destroy(),
  };
}
