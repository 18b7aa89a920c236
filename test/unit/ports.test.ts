import { strict as assert } from 'node:assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';
import { after, afterEach, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ephemeralRange, reservePorts, type PortRange } from '../../src/embedded/kafka/ports.ts';

const portsUrl = pathToFileURL(
  join(fileURLToPath(new URL('.', import.meta.url)), '../../src/embedded/kafka/ports.ts'),
).href;

// Reserves what RESERVE asks for once a line arrives on stdin, prints the ports as one JSON line,
// and holds them until stdin closes.
const reserver = `
import { reservePorts } from ${JSON.stringify(portsUrl)};
const { dir, range, count } = JSON.parse(process.env.RESERVE);
process.stdout.write('ready\\n');
process.stdin.setEncoding('utf8');
process.stdin.once('data', async () => {
  try {
    const { ports } = await reservePorts(count, { lockDir: dir, ranges: [range] });
    process.stdout.write(JSON.stringify({ ports }) + '\\n');
  } catch (error) {
    process.stdout.write(JSON.stringify({ error: error.message }) + '\\n');
  }
  process.stdin.on('end', () => process.exit(0));
});
`;

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

// A failed assertion must not leave reservers holding the test process open.
const running = new Set<ChildProcess>();
afterEach(() => {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
});

function lockDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kgate-port-locks-'));
  dirs.push(dir);
  return dir;
}

/**
 * A window of the ephemeral range: the real reservations of other test files never come from
 * there, so these tests neither disturb them nor depend on them.
 */
function window(size: number): PortRange {
  const { first, last } = ephemeralRange();
  const start = first + randomInt(last - first - size);
  return { first: start, last: start + size - 1 };
}

/** The pid of a process that has already exited. */
function deadPid(): number {
  const { pid } = spawnSync(process.execPath, ['-e', '']);
  assert.ok(pid !== undefined);
  return pid;
}

function seed(dir: string, range: PortRange, pid: number): void {
  for (let port = range.first; port <= range.last; port++) writeFileSync(join(dir, `${port}.0`), `${pid}\n`);
}

async function listenAnywhere(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  return { server, port: address.port };
}

interface Reserver {
  readonly result: Promise<{ ports?: number[]; error?: string }>;
  go(): void;
  finish(): Promise<void>;
}

async function startReserver(dir: string, range: PortRange, count: number): Promise<Reserver> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', reserver], {
    env: { ...process.env, RESERVE: JSON.stringify({ dir, range, count }) },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  running.add(child);
  const exited = once(child, 'exit');
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const line = async (): Promise<string> => {
    const { value, done } = await lines.next();
    if (done === true) throw new Error('the reserver exited before answering');
    return value;
  };
  assert.equal(await line(), 'ready');
  return {
    result: line().then((text) => JSON.parse(text) as { ports?: number[]; error?: string }),
    go: () => child.stdin.write('go\n'),
    finish: async () => {
      child.stdin.end();
      const [code] = (await exited) as [number | null];
      running.delete(child);
      assert.equal(code, 0);
    },
  };
}

describe('port reservation', { timeout: 60_000 }, () => {
  it('never hands one port to two processes reserving at once, even racing for the same stale locks', async () => {
    const dir = lockDir();
    const range = window(64);
    // Every port starts with a dead owner's lock: each reservation is a takeover, and with more
    // processes than spare ports they race for the same ones.
    seed(dir, range, deadPid());
    const reservers = await Promise.all(Array.from({ length: 6 }, () => startReserver(dir, range, 6)));
    for (const reserver of reservers) reserver.go();
    const results = await Promise.all(reservers.map((reserver) => reserver.result));
    const all: number[] = [];
    for (const result of results) {
      assert.equal(result.error, undefined);
      assert.equal(result.ports?.length, 6);
      for (const port of result.ports ?? []) {
        assert.ok(port >= range.first && port <= range.last, `${port} outside the range`);
        all.push(port);
      }
    }
    assert.equal(new Set(all).size, all.length, `a port was given twice: ${all.join(', ')}`);
    // On exit each process gives its ports back; the dead owners' locks stay where they were.
    await Promise.all(reservers.map((reserver) => reserver.finish()));
    const left = readdirSync(dir).sort();
    assert.equal(left.length, 64);
    assert.ok(
      left.every((name) => name.endsWith('.0')),
      left.join(', '),
    );
  });

  it('gives each stale lock to one of many processes racing for it', async () => {
    const dir = lockDir();
    const range = window(3);
    seed(dir, range, deadPid());
    const reservers = await Promise.all(Array.from({ length: 8 }, () => startReserver(dir, range, 1)));
    for (const reserver of reservers) reserver.go();
    const results = await Promise.all(reservers.map((reserver) => reserver.result));
    const won = results.flatMap((result) => result.ports ?? []);
    assert.ok(won.length >= 1 && won.length <= 3, `${won.length} winners`);
    assert.equal(new Set(won).size, won.length, `a port was given twice: ${won.join(', ')}`);
    for (const result of results)
      if (result.ports === undefined) assert.match(result.error ?? '', /found no 1/);
    await Promise.all(reservers.map((reserver) => reserver.finish()));
  });

  it("takes over a dead owner's lock, never a live one's", async () => {
    const dir = lockDir();
    const range = window(16);
    seed(dir, range, process.ppid);
    await assert.rejects(reservePorts(1, { lockDir: dir, ranges: [range] }), /found no 1 port\(s\) free/);

    seed(dir, range, deadPid());
    const reservation = await reservePorts(1, { lockDir: dir, ranges: [range] });
    const [port] = reservation.ports;
    assert.ok(port !== undefined);
    assert.equal(readFileSync(join(dir, `${port}.1`), 'utf8'), `${process.pid}\n`);
    // The dead owner's lock is never removed: a slower racer may still be looking at it.
    assert.ok(readdirSync(dir).includes(`${port}.0`));
    reservation.release();
    reservation.release();
    assert.ok(!readdirSync(dir).includes(`${port}.1`));
  });

  it('skips a port something outside the scheme listens on, and keeps no lock for it', async () => {
    const dir = lockDir();
    const { server, port: busy } = await listenAnywhere();
    try {
      await assert.rejects(
        reservePorts(1, { lockDir: dir, ranges: [{ first: busy, last: busy }] }),
        /found no 1 port\(s\) free/,
      );
      assert.deepEqual(readdirSync(dir), []);
      const around = { first: busy - 2, last: busy + 2 };
      await assert.rejects(
        reservePorts(3, { lockDir: dir, ranges: [around], consecutive: true }),
        /found no 3 consecutive ports free/,
      );
      assert.deepEqual(readdirSync(dir), []);
      const reservation = await reservePorts(4, { lockDir: dir, ranges: [window(64)] });
      assert.ok(!reservation.ports.includes(busy));
      reservation.release();
    } finally {
      server.close();
    }
  });

  it('reserves consecutive ports, and a port given back can be reserved again', async () => {
    const dir = lockDir();
    const range = window(64);
    const first = await reservePorts(3, { lockDir: dir, ranges: [range], consecutive: true });
    const [a, b, c] = first.ports;
    assert.ok(a !== undefined);
    assert.deepEqual([b, c], [a + 1, a + 2]);
    const single = { first: a, last: a };
    await assert.rejects(reservePorts(1, { lockDir: dir, ranges: [single] }), /found no 1 port/);
    first.release();
    const again = await reservePorts(1, { lockDir: dir, ranges: [single] });
    assert.deepEqual(again.ports, [a]);
    again.release();
  });

  it('chooses ports outside the ephemeral range by default', async () => {
    const reservation = await reservePorts(2);
    const { first, last } = ephemeralRange();
    try {
      for (const port of reservation.ports) assert.ok(port < first || port > last, `${port} is ephemeral`);
    } finally {
      reservation.release();
    }
  });
});
