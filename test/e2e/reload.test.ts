import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startKafka, type KafkaCluster } from '../../src/embedded/kafka/index.ts';
import { connectError, reservePort } from '../support/ports.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'bin', 'kgate.js');

/** Polls until `check` holds, failing with the last answer after `timeoutMs`. */
async function until(
  what: string,
  check: () => Promise<boolean | string>,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = '';
  while (Date.now() < deadline) {
    try {
      const result = await check();
      if (result === true) return;
      last = result;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  assert.fail(`${what} within ${timeoutMs} ms; last: ${String(last)}`);
}

// A REST listener and an SSE listener over one kafka chain: editing the REST side restarts only it.
function config(
  bootstrap: string,
  restPort: number,
  ssePort: number,
  extra: string[] = [],
  cached = 'items',
): string {
  return [
    'name: reload-e2e',
    'bindings:',
    '  tcp_rest:',
    '    type: tcp',
    '    kind: server',
    `    options: { host: 127.0.0.1, port: ${restPort} }`,
    '    exit: http_rest',
    '  http_rest: { type: http, kind: server, exit: rest }',
    '  rest:',
    '    type: http-kafka',
    '    kind: proxy',
    '    routes:',
    '      - when: [{ method: PUT, path: "/items/{id}" }]',
    '        exit: north',
    '        with: { capability: produce, topic: items, key: "${params.id}" }',
    ...extra,
    '  tcp_sse:',
    '    type: tcp',
    '    kind: server',
    `    options: { host: 127.0.0.1, port: ${ssePort} }`,
    '    exit: http_sse',
    '  http_sse: { type: http, kind: server, exit: sse }',
    '  sse: { type: sse, kind: server, exit: events }',
    '  events:',
    '    type: sse-kafka',
    '    kind: proxy',
    '    routes:',
    '      - when: [{ path: /events }]',
    '        exit: north',
    '        with: { topic: items }',
    '  north: { type: kafka, kind: cache_client, exit: cache }',
    `  cache: { type: kafka, kind: cache_server, options: { bootstrap: [${cached}] }, exit: south }`,
    `  south: { type: kafka, kind: client, options: { servers: ["${bootstrap}"] } }`,
    '',
  ].join('\n');
}

const LIST_ROUTE = [
  '      - when: [{ method: GET, path: /items }]',
  '        exit: north',
  '        with: { capability: fetch, topic: items, merge: { content-type: application/json } }',
];

let kafka: KafkaCluster;
let dir: string;
let child: ChildProcess | undefined;

before(async () => {
  [kafka, dir] = await Promise.all([startKafka(), mkdtemp(join(tmpdir(), 'kgate-reload-'))]);
  await kafka.createTopic('items', { partitions: 1 });
});

after(async () => {
  child?.kill('SIGKILL');
  await kafka?.stop();
  await rm(dir, { recursive: true, force: true });
});

it(
  'applies edits of the config file and SIGHUP without dropping untouched streams',
  { timeout: 90_000 },
  async () => {
    const [restPort, ssePort] = [await reservePort(), await reservePort()];
    const file = join(dir, 'kgate.yaml');
    await writeFile(file, config(kafka.bootstrap, restPort, ssePort));
    const kgate = spawn(process.execPath, [BIN, 'start', '-c', file, '--cache-dir', join(dir, 'cache')], {
      cwd: ROOT,
      env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '', KGATE_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child = kgate;
    let stderr = '';
    kgate.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => kgate.on('close', (code) => resolve(code)));
    const rest = (path: string, init?: RequestInit) =>
      fetch(`http://127.0.0.1:${restPort}${path}`, { ...init, signal: AbortSignal.timeout(5_000) });
    const put = async (id: string): Promise<void> => {
      const res = await rest(`/items/${id}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id }),
      });
      assert.equal(res.status, 204, `PUT ${id}`);
    };
    const listStatus = async (): Promise<number> => {
      const res = await rest('/items');
      await res.arrayBuffer();
      return res.status;
    };
    const reloads = (): number => stderr.split('\n').filter((l) => l.includes('"config reloaded"')).length;

    await until('kgate serves', async () => stderr.includes('kgate started') || stderr);

    const open = async () => {
      const controller = new AbortController();
      const res = await fetch(`http://127.0.0.1:${ssePort}/events`, {
        headers: { accept: 'text/event-stream' },
        signal: controller.signal,
      });
      assert.equal(res.status, 200);
      const body = res.body;
      assert.ok(body !== null);
      const stream = { text: '', close: () => controller.abort(), done: Promise.resolve() };
      stream.done = (async () => {
        const decoder = new TextDecoder();
        try {
          for await (const chunk of body)
            stream.text += decoder.decode(chunk as Uint8Array, { stream: true });
        } catch {
          // Aborted by close().
        }
        stream.text += '\n[stream ended]';
      })();
      return stream;
    };
    type Stream = Awaited<ReturnType<typeof open>>;
    const sees = (stream: Stream, id: string) =>
      until(
        `the SSE stream delivers ${id}`,
        async () => stream.text.includes(`{"id":"${id}"}`) || stream.text,
      );
    const stream = await open();

    await put('before');
    await sees(stream, 'before');
    assert.equal(await listStatus(), 404);

    // A new route on the REST side: the REST chain restarts, the SSE listener and its stream do not.
    await writeFile(file, config(kafka.bootstrap, restPort, ssePort, LIST_ROUTE));
    await until('the new route answers', async () => (await listStatus()) === 200 || stderr);
    await until('the reload is logged', async () => reloads() === 1 || stderr);
    const event = stderr.split('\n').find((l) => l.includes('"config reloaded"')) ?? '';
    const logged = JSON.parse(event) as Record<string, unknown>;
    assert.deepEqual(
      [logged['trigger'], logged['added'], logged['changed'], logged['removed'], logged['restarted']],
      ['watch', [], ['rest'], [], ['tcp_rest', 'http_rest']],
    );
    await put('after-edit');
    await sees(stream, 'after-edit');

    // An invalid edit changes nothing and says where the problem is, on every attempt.
    await writeFile(
      file,
      config(kafka.bootstrap, restPort, ssePort, LIST_ROUTE).replace(
        'capability: fetch',
        'capability: bogus',
      ),
    );
    await until(
      'the invalid edit is reported',
      async () => /kgate\.yaml:\d+:\d+ bindings\.rest\.routes/.test(stderr) || stderr,
    );
    assert.match(stderr, /config reload rejected, the running config is kept/);
    assert.equal(await listStatus(), 200);
    kgate.kill('SIGHUP');
    await until(
      'SIGHUP re-reads the file',
      async () => /"trigger":"SIGHUP"[^\n]*config reload rejected/.test(stderr) || stderr,
    );
    assert.equal(reloads(), 1);

    // Editors often replace the file rather than write into it.
    const replacement = join(dir, 'kgate.yaml.tmp');
    await writeFile(replacement, config(kafka.bootstrap, restPort, ssePort));
    await rename(replacement, file);
    await until('the replaced file is applied', async () => (await listStatus()) === 404 || stderr);
    await put('after-replace');
    await sees(stream, 'after-replace');
    assert.doesNotMatch(stream.text, /stream ended/);

    // Below the shared cache, everything in front restarts with fresh references to it. The
    // listeners keep listening meanwhile: connections wait for the new chain, none is refused.
    const attempts: Promise<string | undefined>[] = [];
    let reloading = true;
    const probing = (async () => {
      while (reloading) {
        attempts.push(connectError(restPort), connectError(ssePort));
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    await writeFile(file, config(kafka.bootstrap, restPort, ssePort, [], 'items, other'));
    await until('the cache change is applied', async () => reloads() === 3 || stderr);
    reloading = false;
    await probing;
    const failed = (await Promise.all(attempts)).filter((code) => code !== undefined);
    assert.deepEqual(
      failed,
      [],
      `${failed.length} of ${attempts.length} connections failed during the reload`,
    );
    const last = JSON.parse(
      stderr.split('\n').filter((l) => l.includes('"config reloaded"'))[2] ?? '{}',
    ) as Record<string, unknown>;
    assert.deepEqual(last['changed'], ['cache']);
    assert.equal((last['restarted'] as unknown[]).length, 8);
    await stream.done;
    const reopened = await open();
    await sees(reopened, 'after-replace');
    await put('after-chain');
    await sees(reopened, 'after-chain');
    reopened.close();
    await reopened.done;
    kgate.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
  },
);

/** A broker-free kgate serving `site/index.html` from its directory, and what it logs. */
async function startStatic(name: string, env: Record<string, string> = {}) {
  const home = join(dir, name);
  const port = await reservePort();
  await mkdir(join(home, 'site'), { recursive: true });
  await writeFile(join(home, 'site', 'index.html'), 'served');
  const file = join(home, 'kgate.yaml');
  // The bomb fixture's chain without its aliases.
  const working = (await readFile(BOMB, 'utf8'))
    .replace(/^ {6}l\d: .*\n/gm, '')
    .replace('port: 0', `port: ${port}`);
  await writeFile(file, working);
  const kgate = spawn(process.execPath, [BIN, 'start', '-c', file, '--cache-dir', join(home, 'cache')], {
    cwd: ROOT,
    env: {
      PATH: process.env['PATH'] ?? '',
      HOME: process.env['HOME'] ?? '',
      KGATE_LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child = kgate;
  const gateway = {
    file,
    working,
    stderr: '',
    exited: new Promise<number | null>((resolve) => kgate.on('close', (code) => resolve(code))),
    get: async () =>
      (await fetch(`http://127.0.0.1:${port}/index.html`, { signal: AbortSignal.timeout(5_000) })).text(),
    alive: () => kgate.exitCode === null,
    stop: () => kgate.kill('SIGTERM'),
  };
  kgate.stderr?.setEncoding('utf8').on('data', (chunk: string) => (gateway.stderr += chunk));
  await until('kgate serves', async () => gateway.stderr.includes('kgate started') || gateway.stderr);
  return gateway;
}

const BOMB = new URL('../fixtures/config/mapping-bomb.yaml', import.meta.url);

it('keeps serving when an alias bomb is copied over its config', { timeout: 60_000 }, async () => {
  const kgate = await startStatic('bomb');
  assert.equal(await kgate.get(), 'served');
  await copyFile(BOMB, kgate.file);
  await until(
    'the bomb is refused',
    async () => kgate.stderr.includes('config reload rejected, the running config is kept') || kgate.stderr,
    10_000,
  );
  assert.match(
    kgate.stderr,
    /kgate\.yaml:\d+:\d+ aliases expand to more than 10000 nodes, the loader's limit/,
  );
  assert.ok(kgate.alive(), 'still running');
  assert.equal(await kgate.get(), 'served');
  kgate.stop();
  assert.equal(await kgate.exited, 0, kgate.stderr);
});

it('logs no substituted value when a reload is refused or fails', { timeout: 60_000 }, async () => {
  // 192.0.2.0/24 is reserved for documentation: no machine has an address in it.
  const env = { SASL_PASSWORD: 'hunter2-s3cret', LISTEN_HOST: '192.0.2.77' };
  const kgate = await startStatic('secrets', env);
  const refused = () => kgate.stderr.split('config reload rejected').length - 1;
  await writeFile(
    kgate.file,
    kgate.working.replace('name: bomb', 'name: leaky\nvaults:\n  v: {}\n') +
      '  leaky:\n    type: kafka\n    kind:\n      sasl: { username: a, password: "${{env.SASL_PASSWORD}}" }\n',
  );
  await until('the invalid edit is refused', async () => refused() === 1 || kgate.stderr);
  // A valid edit whose new listener cannot bind: the error names the address it was given.
  await writeFile(
    kgate.file,
    kgate.working.replace('host: 127.0.0.1, port:', 'host: "${{env.LISTEN_HOST}}", port:'),
  );
  await until(
    'the failed reload is logged',
    async () =>
      /config reload failed[^\n]*still down|previous bindings restored/.test(kgate.stderr) || kgate.stderr,
  );
  assert.match(kgate.stderr, /address \$\{\{env\.LISTEN_HOST\}\} is not on this machine/);
  assert.doesNotMatch(kgate.stderr, /hunter2|192\.0\.2\.77/);
  assert.ok(kgate.alive(), 'still running');
  // The listener's failed replacement left the http server behind it serving.
  assert.equal(await kgate.get(), 'served');
  kgate.stop();
  assert.equal(await kgate.exited, 0, kgate.stderr);
});
