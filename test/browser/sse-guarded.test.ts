import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Page } from 'playwright-core';
import { closeFakeTopics, FakeTopic } from '../support/fake-cache.ts';
import { startGuardedGateway, type GuardedGateway } from '../support/guarded-gateway.ts';
import { AUDIENCE, ISSUER, signToken, testKey, type TestKey } from '../support/jwt.ts';

// An EventSource page in real Chromium on a guarded event stream: its token expires while it
// listens, the stream is challenged and then ends, the browser's own reconnect with the expired
// token is refused, and the page reconnects with a new token and its last event id: every event
// arrives exactly once, in order.

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed`;

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>guarded events</title></head><body><script>
  window.received = [];
  window.challenges = 0;
  window.opens = 0;
  window.errors = 0;
  let source;
  let lastId = '';
  window.connect = (token) => {
    if (source) source.close();
    const resume = lastId === '' ? '' : '&lastEventId=' + encodeURIComponent(lastId);
    source = new EventSource('/events?access_token=' + token + resume);
    source.onopen = () => { window.opens++; };
    source.onerror = () => { window.errors++; };
    source.onmessage = (e) => { lastId = e.lastEventId; window.received.push(e.data); };
    source.addEventListener('challenge', () => { window.challenges++; });
  };
  window.state = () => (source ? source.readyState : -1);
</script></body></html>`;

let key: TestKey;
let gateway: GuardedGateway;
let www: string;
const events = new FakeTopic('events');

after(closeFakeTopics);

before(async () => {
  if (skip !== false) return;
  key = await testKey();
  www = await mkdtemp(join(tmpdir(), 'kgate-guarded-page-'));
  await writeFile(join(www, 'index.html'), PAGE);
  gateway = await startGuardedGateway(
    (port) => `
guards:
  jwt0:
    type: jwt
    options:
      issuer: ${ISSUER}
      audience: ${AUDIENCE}
      keys: [${JSON.stringify(key.jwk)}]
      challenge: 2
bindings:
  tcp: { type: tcp, kind: server, options: { host: 127.0.0.1, port: ${port} }, exit: http }
  http:
    type: http
    kind: server
    options:
      authorization:
        jwt0: { credentials: { query: { access_token: "{credentials}" } } }
    routes:
      - when: [ { headers: { ":path": "/events*" } } ]
        exit: sse
      - exit: files
  files: { type: http-filesystem, kind: proxy, routes: [ { when: [ { path: "/{file}" } ], exit: www } ] }
  www: { type: filesystem, kind: server, options: { location: ${www} } }
  sse: { type: sse, kind: server, routes: [ { guarded: { jwt0: [ "proxy:stream" ] }, exit: events } ] }
  events:
    type: sse-kafka
    kind: proxy
    routes: [ { when: [ { path: /events } ], exit: cache, with: { topic: events } } ]
  cache: { type: kafka, kind: cache_client, exit: server }
  server: { type: kafka, kind: cache_server, exit: client }
  client: { type: kafka, kind: client }
`,
    [events],
    { keepLogs: false },
  );
});

after(async () => {
  await gateway?.stop();
  if (www !== undefined) await rm(www, { recursive: true, force: true });
});

const read = <T>(tab: Page, name: string): Promise<T> =>
  tab.evaluate((n) => (globalThis as unknown as Record<string, T>)[n] as T, name);

describe('a guarded event stream in a browser', { skip }, () => {
  it('ends at token expiry after a challenge, and resumes with a new token without loss or duplicates', async () => {
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
      ],
    });
    try {
      const tab = await browser.newPage();
      await tab.goto(`http://127.0.0.1:${gateway.port}/index.html`);
      const waitReceived = (n: number): Promise<unknown> =>
        tab.waitForFunction(
          (count) => (globalThis as unknown as { received: unknown[] }).received.length >= count,
          n,
          {
            timeout: 20_000,
          },
        );
      for (let i = 1; i <= 3; i++) events.put(0, `k${i}`, `m${i}`);

      const first = await signToken(key, { scope: 'proxy:stream' }, { expiresIn: 4 });
      await tab.evaluate((t) => (globalThis as unknown as { connect(t: string): void }).connect(t), first);
      await waitReceived(3);
      events.put(0, 'k4', 'm4');
      await waitReceived(4);

      // The challenge comes 2 s before expiry; the stream ends at expiry, and the browser's own
      // reconnect with the expired token is answered 404, which closes the EventSource for good.
      await tab.waitForFunction(
        () => (globalThis as unknown as { challenges: number }).challenges >= 1,
        null,
        {
          timeout: 10_000,
        },
      );
      await tab.waitForFunction(() => (globalThis as unknown as { state(): number }).state() === 2, null, {
        timeout: 15_000,
      });
      events.put(0, 'k5', 'm5');
      events.put(0, 'k6', 'm6');
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(
        (await read<string[]>(tab, 'received')).length,
        4,
        'nothing arrives without a valid token',
      );

      const second = await signToken(key, { scope: 'proxy:stream' }, { expiresIn: 60 });
      await tab.evaluate((t) => (globalThis as unknown as { connect(t: string): void }).connect(t), second);
      await waitReceived(6);
      events.put(0, 'k7', 'm7');
      await waitReceived(7);
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.deepEqual(await read<string[]>(tab, 'received'), ['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7']);
      assert.equal(await read<number>(tab, 'challenges'), 1);
      assert.equal(await read<number>(tab, 'opens'), 2);
    } finally {
      await browser.close();
    }
  });
});
