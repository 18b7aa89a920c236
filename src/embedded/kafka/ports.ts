import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureLockDir, tryLockPort, type PortLock } from './port-lock.ts';

export const LOOPBACK = '127.0.0.1';

/**
 * Ports for listeners another process opens later (a broker, a kgate child process), chosen so
 * that nothing can take them in between:
 * - outside the kernel's ephemeral range, so no outgoing connection of any process is ever given
 *   one as its local port, and no listener on port 0 either;
 * - each one locked (see port-lock.ts) in a directory every kgate process on the machine shares,
 *   so two test files, benches or demos never pick the same port;
 * - and bindable at the moment it is locked: something outside this scheme may hold it.
 * A listener in the same process needs none of this: it listens on port 0 and reads the port back.
 */

/** The lock directory every process with the same TMPDIR shares. */
export const PORT_LOCK_DIR = join(tmpdir(), 'kgate-ports');

export interface PortRange {
  readonly first: number;
  readonly last: number;
}

/** IANA's dynamic range, which macOS and Windows use, for systems without Linux's setting. */
const FALLBACK_EPHEMERAL: PortRange = { first: 49152, last: 65535 };

/** How far below (and above) the ephemeral range ports are chosen: plenty for any number of tests. */
const BAND = 8192;

/** The range the kernel picks local ports of outgoing connections (and port 0) from. */
export function ephemeralRange(): PortRange {
  try {
    const [first, last] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    if (first !== undefined && last !== undefined && Number.isInteger(first) && Number.isInteger(last)) {
      if (first >= 1 && first <= last && last <= 65535) return { first, last };
    }
  } catch {
    // Not Linux: fall back to the common default.
  }
  return FALLBACK_EPHEMERAL;
}

/** Unprivileged ports just below the ephemeral range, then just above it. */
export function reservableRanges(ephemeral: PortRange = ephemeralRange()): PortRange[] {
  const below = { first: Math.max(1024, ephemeral.first - BAND), last: ephemeral.first - 1 };
  const above = { first: ephemeral.last + 1, last: Math.min(65535, ephemeral.last + BAND) };
  return [below, above].filter((range) => range.first <= range.last);
}

export interface ReserveOptions {
  /** Ports that follow each other, e.g. for a listener configured with a range like "8080-8082". */
  readonly consecutive?: boolean;
  /** Another lock directory and range, for tests of the reservation itself. */
  readonly lockDir?: string;
  readonly ranges?: readonly PortRange[];
}

export interface PortReservation {
  readonly ports: readonly number[];
  /**
   * Gives the ports back, once whatever listened on them has closed; safe to call more than once.
   * The ports are given back when the process exits in any case.
   */
  release(): void;
}

/** Whether a listener could bind `port` on every address right now; the probe closes again at once. */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    // No host: the wildcard address conflicts with a listener on any address of this port.
    probe.listen({ port }, () => probe.close(() => resolve(true)));
  });
}

function candidates(ranges: readonly PortRange[]): number[] {
  const ports: number[] = [];
  for (const { first, last } of ranges) for (let port = first; port <= last; port++) ports.push(port);
  return ports;
}

/**
 * Reserves `count` ports for this process: nobody using the same lock directory gets them until
 * they are released or this process ends. Starting at a random place spreads reservations, so a
 * port just given back is seldom handed out again while a client may still try to reach it.
 */
export async function reservePorts(count: number, options: ReserveOptions = {}): Promise<PortReservation> {
  const dir = options.lockDir ?? PORT_LOCK_DIR;
  ensureLockDir(dir);
  const ports = candidates(options.ranges ?? reservableRanges());
  const start = ports.length > 0 ? randomInt(ports.length) : 0;
  const taken: PortLock[] = [];
  const giveBack = (): void => {
    for (const lock of taken.splice(0)) lock.release();
  };
  for (let step = 0; step < ports.length && taken.length < count; step++) {
    const port = ports[(start + step) % ports.length];
    if (port === undefined) continue;
    if (options.consecutive === true && taken.length > 0 && taken[taken.length - 1]?.port !== port - 1) {
      giveBack();
    }
    const lock = tryLockPort(dir, port);
    if (lock !== undefined && (await bindable(port))) {
      taken.push(lock);
      continue;
    }
    lock?.release();
    if (options.consecutive === true) giveBack();
  }
  if (taken.length < count) {
    giveBack();
    const what = options.consecutive === true ? `${count} consecutive ports` : `${count} port(s)`;
    throw new Error(`found no ${what} free to reserve (lock directory ${dir})`);
  }
  const locks = [...taken];
  return {
    ports: locks.map((lock) => lock.port),
    release() {
      for (const lock of locks) lock.release();
    },
  };
}
