import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { reservePort } from '../support/ports.ts';
import { until } from '../support/until.ts';

/**
 * `kgate start` on the built CLI with one of the configs under test/zilla/configs, each in the
 * shape of the Zilla example it is named after. The port Zilla's example listens on comes from
 * `ZILLA_PORT`, so that tests can run side by side; kgate counts as up once that port takes a
 * TCP connection, which serves examples without HTTP (tcp.echo) as well as those with it.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface KgateProcess {
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

export async function startKgate(
  example: string,
  env: Readonly<Record<string, string>>,
  cacheDir: string,
): Promise<KgateProcess> {
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
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  try {
    await until(
      `kgate on ${example} to listen`,
      async () => {
        assert.equal(child.exitCode, null, `kgate exited early:\n${output}`);
        return accepts(port);
      },
      30_000,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return { port, url: (path) => `http://127.0.0.1:${port}${path}`, output: () => output, stop };
}
