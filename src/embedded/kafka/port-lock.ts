import { chmodSync, linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';

/**
 * A port lock shared by every process on the machine that uses the same lock directory: a file
 * named `<port>.<generation>` holding the owner's pid.
 *
 * - A port is free when the first generation that does not exist follows only generations whose
 *   owners are dead (or there is none): the caller creates that generation, and creation is
 *   exclusive (a hard link of a file already holding the pid, so nobody ever reads a lock without
 *   its owner).
 * - The owner releases the port by removing its own file. Nobody else ever removes a lock file,
 *   so a dead owner's file stays, and the next generation is the one to take. That is what makes
 *   taking over a dead owner's port safe when several processes race for it: they all try to create
 *   the same next generation and only one can; nobody deletes a stale lock that a slower racer
 *   could then mistake for the one it had judged stale.
 * - Files of owners that died (killed, crashed) stay behind, a few bytes each, until the temporary
 *   directory is cleared; only a port's chain of dead owners is ever walked.
 */
export interface PortLock {
  readonly port: number;
  /** Removes the lock file; safe to call more than once. */
  release(): void;
}

const held = new Set<string>();
let exitHookInstalled = false;

/** Best effort on the way out; a lock left by a process that could not run this is taken over as stale. */
function releaseAllHeld(): void {
  for (const file of held) removeFile(file);
  held.clear();
}

function removeFile(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // Already gone.
  }
}

/** Any pid that might still run counts as alive: only a certainly dead owner loses its port. */
function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, under another user.
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** The owner's pid, undefined when there is no such lock, NaN for a file that holds no pid. */
function ownerOf(file: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return /^\d+\n$/.test(text) ? Number(text.trim()) : Number.NaN;
}

/** True if this call created `file`; false if it already existed. */
function createExclusively(dir: string, file: string): boolean {
  const draft = join(dir, `.draft-${process.pid}-${randomUUID()}`);
  writeFileSync(draft, `${process.pid}\n`, { flag: 'wx', mode: 0o644 });
  try {
    linkSync(draft, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    removeFile(draft);
  }
}

/** The lock directory, shared by all users like /tmp itself: anyone may add files, only owners remove them. */
export function ensureLockDir(dir: string): void {
  if (mkdirSync(dir, { recursive: true }) !== undefined) chmodSync(dir, 0o1777);
}

/** Locks `port` for this process, or returns undefined if a live process holds it. */
export function tryLockPort(dir: string, port: number): PortLock | undefined {
  for (let generation = 0; ;) {
    const file = join(dir, `${port}.${generation}`);
    const owner = ownerOf(file);
    if (owner === undefined) {
      if (createExclusively(dir, file)) return own(port, file);
      // Someone else created it first: look again at what they wrote.
      continue;
    }
    // A file holding no pid was not written by this scheme's creation, which always holds one:
    // treated like a dead owner's, it is passed over rather than removed.
    if (!Number.isNaN(owner) && alive(owner)) return undefined;
    generation++;
  }
}

function own(port: number, file: string): PortLock {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', releaseAllHeld);
  }
  held.add(file);
  return {
    port,
    release() {
      if (!held.delete(file)) return;
      removeFile(file);
    },
  };
}
