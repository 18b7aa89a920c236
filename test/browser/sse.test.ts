import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import type { SseRequest, SseStream } from '../../src/bindings/north.ts';
import { bindingConfig, handlerConfig, startChain } from '../integration/north-harness.ts';

const CHROMIUM = '/usr/bin/chromium';

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>sse</title></head><body><script>
  window.received = [];
  window.opens = 0;
  const source = new EventSource('/events/demo');
  source.onopen = () => { window.opens++; };
  source.onmessage = (e) => { window.received.push({ type: 'message', id: e.lastEventId, data: e.data }); };
  source.addEventListener('custom', (e) => { window.received.push({ type: 'custom', id: e.lastEventId, data: e.data }); });
</script></body></html>`;

interface Received {
  type: string;
  id: string;
  data: string;
}

describe(
  'sse server in a browser',
  { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed` },
  () => {
    it('delivers events to EventSource, which reconnects with Last-Event-ID after the server closes', async () => {
      const connects: (string | undefined)[] = [];
      const page = {
        handleRequest(_req: IncomingMessage, res: ServerResponse): void {
          res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
          res.end(PAGE);
        },
      };
      const events = {
        handleEventStream(request: SseRequest, stream: SseStream): void {
          connects.push(request.lastEventId);
          if (request.lastEventId === undefined) {
            stream.send({ id: '1', data: 'one' });
            stream.send({ id: '2', type: 'custom', data: 'two\nlines' });
            stream.send({ id: '3', data: 'three' });
            // The browser should come back after the retry hint, asking for what follows 3.
            stream.close(100);
          } else {
            stream.send({ id: String(Number(request.lastEventId) + 1), data: 'four' });
          }
        },
      };
      const chain = await startChain(
        [
          handlerConfig('page'),
          handlerConfig('events'),
          bindingConfig('sse', 'sse', 'server', { retry: 100 }, 'events'),
          bindingConfig('http', 'http', 'server', {}, 'page', [
            { when: [{ headers: { ':path': '/events/*' } }], exit: 'sse' },
          ]),
          bindingConfig('tcp', 'tcp', 'server', { host: '127.0.0.1', port: 0 }, 'http'),
        ],
        { handlers: { page, events } },
      );
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      });
      try {
        const tab = await browser.newPage();
        await tab.goto(`http://127.0.0.1:${chain.port()}/`);
        await tab.waitForFunction(
          () => (globalThis as unknown as { received: unknown[] }).received.length >= 4,
          null,
          {
            timeout: 15_000,
          },
        );
        const received = await tab.evaluate(
          () => (globalThis as unknown as { received: Received[] }).received,
        );
        assert.deepEqual(received, [
          { type: 'message', id: '1', data: 'one' },
          { type: 'custom', id: '2', data: 'two\nlines' },
          { type: 'message', id: '3', data: 'three' },
          { type: 'message', id: '4', data: 'four' },
        ]);
        assert.deepEqual(connects, [undefined, '3']);
        assert.equal(await tab.evaluate(() => (globalThis as unknown as { opens: number }).opens), 2);
      } finally {
        await browser.close();
        await chain.stop();
      }
    });
  },
);
