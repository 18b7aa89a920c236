// What the load scripts share: a `kgate` process run from the sources as a user starts it, and a
// deadline that stops the run (and whatever it started) however it ends.

import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** The CLI from the sources, so a run measures the working tree, not a stale build. */
export const CLI = join(ROOT, 'src', 'cli', 'main.ts');

export interface Exit {
  readonly code: number | null;
  readonly output: string;
}

/** One `kgate` command; its stdout and stderr are kept together for reports and diagnostics. */
export class KgateProcess {
  readonly child: ChildProcess;
  output = '';
  readonly exited: Promise<Exit>;

  constructor(args: readonly string[], env: Readonly<Record<string, string>> = {}) {
    this.child = spawn(process.execPath, [CLI, ...args], {
      cwd: ROOT,
      env: {
        PATH: process.env['PATH'] ?? '',
        HOME: process.env['HOME'] ?? '',
        KGATE_LOG_LEVEL: 'warn',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (this.output += chunk));
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.output += chunk));
    this.exited = new Promise((resolve, reject) => {
      this.child.on('error', reject);
      this.child.on('close', (code) => resolve({ code, output: this.output }));
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async stop(): Promise<void> {
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** Polls `check` until it holds; fails with `what` after `timeoutMs` or when `alive` says no. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  alive: () => boolean,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!alive()) throw new Error(`${what}: the process exited`);
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${what}: timed out after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Runs `body`, failing it after `deadlineMs` or on SIGINT/SIGTERM; `cleanup` runs either way. */
export async function withDeadline<T>(
  deadlineMs: number,
  body: () => Promise<T>,
  cleanup: () => Promise<void>,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const onSignal = (): void => {
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await Promise.race([
      body(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`run exceeded ${deadlineMs} ms`)), deadlineMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cleanup();
  }
}
