import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { reservePort } from '../support/ports.ts';
import { until } from '../support/until.ts';

/**
 * Runs `kgate start` on the built CLI with one of the configs under test/zilla/configs, each in
 * the shape of the Zilla example it is named after. Zilla's examples listen on 7114; these read
 * the port from `ZILLA_PORT` (and the rest a test must choose, such as the broker, from other
 * variables), so that tests can run side by side. kgate counts as up once `ready` answers other
 * than 503, or, for an example without HTTP (tcp.echo), once the port takes a TCP connection.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface ZillaExample {
  readonly port: number;
  readonly url: (path: string) => string;
  /** Everything kgate printed so far, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

async function accepts(port: number): Promise<boolean> {
  const socket = connect(port, '127.0.0.1');
  try {
    await once(socket, 'connect');
    return true;
  } catch {
    return false;
  } finally {
    socket.destroy();
  }
}

async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(url);
    await res.arrayBuffer();
    return res.status !== 503;
  } catch {
    return false;
  }
}

/** `ready`: the path to ask, or `tcp` to wait for the port to take a connection. */
export async function startExample(
  example: string,
  env: Readonly<Record<string, string>>,
  cacheDir: string,
  ready: string = '/',
): Promise<ZillaExample> {
  const port = await reservePort();
  let output = '';
  const child: ChildProcess = spawn(
    process.execPath,
    [
      join(ROOT, 'bin', 'kgate.js'),
      'start',
      '-c',
      join(ROOT, 'test', 'zilla', 'configs', `${example}.yaml`),
      '--cache-dir',
      cacheDir,
    ],
    {
      cwd: ROOT,
      env: {
        PATH: process.env['PATH'] ?? '',
        HOME: process.env['HOME'] ?? '',
        KGATE_LOG_LEVEL: 'warn',
        ZILLA_PORT: String(port),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const url = (path: string): string => `http://127.0.0.1:${port}${path}`;
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  try {
    await until(
      `kgate on ${example} to answer`,
      async () => {
        assert.equal(child.exitCode, null, `kgate exited early:\n${output}`);
        return ready === 'tcp' ? accepts(port) : answers(url(ready));
      },
      30_000,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return { port, url, output: () => output, stop };
}
