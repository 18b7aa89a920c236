import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';

/**
 * Keeps brokers from outliving the Node process that started them, however it ends:
 * - a normal exit or process.exit(): the 'exit' hook kills them synchronously;
 * - SIGINT/SIGTERM/SIGHUP nobody else handles: kill them, then die of the same signal as before;
 * - SIGKILL or a crash of Node itself: a tiny shell watchdog per cluster sees its stdin pipe close
 *   and kills whatever PIDs the cluster's pid files name, then removes the temporary directory.
 */

const children = new Set<ChildProcess>();
const temporaryDirs = new Set<string>();
let installed = false;

function killEverythingNow(): void {
  for (const child of children) {
    try {
      child.kill('SIGKILL');
    } catch {
      // Already gone.
    }
  }
  children.clear();
  for (const dir of temporaryDirs) rmSync(dir, { recursive: true, force: true });
  temporaryDirs.clear();
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

function onSignal(signal: NodeJS.Signals): void {
  // Someone else (e.g. `kgate demo`) owns shutdown on this signal and will stop the cluster;
  // the 'exit' hook still covers whatever it leaves behind.
  if (process.listenerCount(signal) > 1) return;
  killEverythingNow();
  for (const s of SIGNALS) process.removeListener(s, onSignal);
  process.kill(process.pid, signal);
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', killEverythingNow);
  for (const signal of SIGNALS) process.on(signal, onSignal);
}

export function trackProcess(child: ChildProcess): void {
  install();
  children.add(child);
  child.once('exit', () => children.delete(child));
}

export function untrackProcess(child: ChildProcess): void {
  children.delete(child);
}

export function trackTemporaryDir(dir: string): void {
  install();
  temporaryDirs.add(dir);
}

export function untrackTemporaryDir(dir: string): void {
  temporaryDirs.delete(dir);
}

export interface Watchdog {
  /** Called on an orderly stop, so the watchdog does nothing. */
  dismiss(): void;
}

/**
 * Starts the out-of-process safety net for one cluster. Each of `pidFiles` holds the PID of a
 * running broker while it runs (the file is removed when it stops); `removeDir` is deleted after.
 */
export function startWatchdog(pidFiles: readonly string[], removeDir: string | undefined): Watchdog {
  const script = [
    // `read` returns only when Node closes the pipe, which the kernel does when Node dies.
    'read -r _ignored',
    'dir=$1; shift',
    'for f in "$@"; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; done',
    'if [ -n "$dir" ]; then sleep 1; rm -rf "$dir"; fi',
  ].join('\n');
  const child = spawn('sh', ['-c', script, 'kgate-kafka-watchdog', removeDir ?? '', ...pidFiles], {
    stdio: ['pipe', 'ignore', 'ignore'],
    // Its own process group: a Ctrl-C aimed at the terminal's foreground group must not kill the
    // watchdog before it had a chance to do its job.
    detached: true,
  });
  child.on('error', () => undefined);
  child.stdin?.on('error', () => undefined);
  // Neither the watchdog nor its pipe may keep the event loop (and so the test run) alive.
  child.unref();
  (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  return {
    dismiss() {
      try {
        child.kill('SIGKILL');
      } catch {
        // Already gone.
      }
    },
  };
}
