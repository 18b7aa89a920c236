import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, type ClientHttp2Session } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startKafka, type KafkaCluster } from '../../src/embedded/kafka/index.ts';
import { EventStreamParser, type SseMessage } from '../support/event-stream.ts';
import { signToken, testKey, type TestKey } from '../support/jwt.ts';
import { reservePort } from '../support/ports.ts';
import { until } from '../support/until.ts';

// Zilla's sse.kafka.fanout.jwt example, replayed against `kgate start` on a config of its shape
// (test/zilla/configs/sse.kafka.fanout.jwt.yaml) and a real broker: a token made as the README
// makes it (RS256, kid "example", the example's issuer and audience, scope proxy:stream) opens
// the stream over HTTP/2 and gets what is produced to `events` as `data`; a `challenge` event
// comes `challenge` seconds before the token expires, and the stream ends when it does.

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CONFIG = join(ROOT, 'test', 'zilla', 'configs', 'sse.kafka.fanout.jwt.yaml');

let kafka: KafkaCluster;
let dir: string;
let child: ChildProcess | undefined;
let output = '';
let port: number;
let key: TestKey;
let session: ClientHttp2Session | undefined;

before(async () => {
  kafka = await startKafka();
  await kafka.createTopic('events', { partitions: 1, configs: { 'cleanup.policy': 'compact' } });
  dir = await mkdtemp(join(tmpdir(), 'kgate-zilla-jwt-'));
  await mkdir(join(dir, 'www'));
  await writeFile(join(dir, 'www', 'index.html'), '<!doctype html><title>events</title>');
  key = await testKey('example', 'RS256');
  port = await reservePort();
  const env = {
    PATH: process.env['PATH'] ?? '',
    HOME: process.env['HOME'] ?? '',
    PORT: String(port),
    WWW: join(dir, 'www'),
    JWT_N: key.jwk.n ?? '',
    KAFKA_BOOTSTRAP_SERVER: kafka.bootstrap.split(',')[0] ?? '',
    KGATE_LOG_LEVEL: 'warn',
  };
  child = spawn(
    process.execPath,
    [join(ROOT, 'bin', 'kgate.js'), 'start', '-c', CONFIG, '--cache-dir', join(dir, 'cache')],
    { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  await until(
    'kgate answers over HTTP/2',
    async () => {
      assert.equal(child?.exitCode, null, `kgate exited:\n${output}`);
      try {
        return (await get('/index.html')).status === 200;
      } catch {
        return false;
      }
    },
    30_000,
  );
});

after(async () => {
  session?.close();
  child?.kill('SIGKILL');
  await kafka?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

function h2(): ClientHttp2Session {
  if (session === undefined || session.closed || session.destroyed) {
    session = connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
  }
  return session;
}

async function get(path: string): Promise<{ status: number; body: string }> {
  const stream = h2().request({ ':path': path });
  let status = 0;
  let body = '';
  stream.setEncoding('utf8');
  stream.on('response', (headers) => (status = Number(headers[':status'])));
  stream.on('data', (chunk: string) => (body += chunk));
  await new Promise<void>((resolve, reject) => {
    stream.on('end', resolve);
    stream.on('error', reject);
  });
  return { status, body };
}

interface Events {
  status: number;
  readonly events: SseMessage[];
  readonly ended: Promise<void>;
  close(): void;
}

async function events(path: string): Promise<Events> {
  const stream = h2().request({ ':path': path, accept: 'text/event-stream' });
  const parser = new EventStreamParser();
  const opened: Events = {
    status: 0,
    events: [],
    ended: new Promise((resolve) => stream.once('close', () => resolve())),
    close: () => stream.close(),
  };
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => opened.events.push(...parser.push(chunk)));
  stream.on('error', () => undefined);
  await new Promise<void>((resolve) =>
    stream.once('response', (headers) => {
      opened.status = Number(headers[':status']);
      resolve();
    }),
  );
  return opened;
}

const token = (expiresIn: number, scope = 'proxy:stream'): Promise<string> =>
  signToken(key, { sub: 'example', scope }, { expiresIn });

describe('sse.kafka.fanout.jwt', { timeout: 120_000 }, () => {
  it('streams what is produced to events to a client with a token, as the README shows', async () => {
    await kafka.produce('events', [{ key: '1', value: '{ "id": 1, "name": "Hello World!"}' }]);
    const s = await events(`/events?access_token=${await token(60)}`);
    assert.equal(s.status, 200);
    await until('the event', () => s.events.length >= 1, 20_000);
    assert.equal(s.events[0]?.data, '{ "id": 1, "name": "Hello World!"}');
    await kafka.produce('events', [{ key: '2', value: 'live' }]);
    await until('the live event', () => s.events.length >= 2, 20_000);
    assert.equal(s.events[1]?.data, 'live');
    s.close();
  });

  it('answers 404 to a stream without a token, with a forged one and without the scope, as Zilla does', async () => {
    for (const path of [
      '/events',
      '/events?access_token=not.a.token',
      `/events?access_token=${await signToken(await testKey('example'), { scope: 'proxy:stream' })}`,
      `/events?access_token=${await token(60, 'other')}`,
    ]) {
      const s = await events(path);
      assert.equal(s.status, 404, path.slice(0, 40));
      s.close();
    }
  });

  it('sends a challenge event challenge seconds before the token expires, then ends the stream', async () => {
    const expiresIn = 13;
    const issued = Date.now();
    const s = await events(`/events?access_token=${await token(expiresIn)}`);
    assert.equal(s.status, 200);
    await until('the challenge', () => s.events.some((e) => e.type === 'challenge'), 15_000);
    const challengedAfter = Date.now() - issued;
    assert.ok(challengedAfter < (expiresIn - 8) * 1000, `challenged after ${challengedAfter} ms`);
    assert.deepEqual(JSON.parse(s.events.find((e) => e.type === 'challenge')?.data ?? ''), {
      method: 'POST',
      headers: { 'content-type': 'application/x-challenge-response' },
    });
    await s.ended;
    const endedAfter = Date.now() - issued;
    assert.ok(
      endedAfter >= (expiresIn - 2) * 1000 && endedAfter < (expiresIn + 3) * 1000,
      `ended after ${endedAfter} ms`,
    );
  });
});
