// The config loader against YAML alias bombs (docs/security.md, 6):
//   node bench/config-bombs.ts [--kgate src/cli/main.ts] [--deadline-seconds 180] [--watch-seconds 40]
//        [--parts bombs,largest,reload]
// 1. `kgate validate` on each bomb in test/fixtures/config/: seconds, peak RSS and how it ended.
// 2. `kgate validate` on files just under the loader's size limit (256 KiB) in the shapes that
//    cost the yaml library most per byte: a flow list of short scalars, a mapping of many keys,
//    aliases, flow nesting. What the largest file the loader accepts can cost.
// 3. `kgate start` on a working tcp -> http -> http-filesystem -> filesystem chain (no broker),
//    then the mapping bomb copied over its config: whether it still serves `watch-seconds` later,
//    its peak RSS, and what it logged about the reload.
// `--kgate` names the CLI entry to run, e.g. the src/cli/main.ts of a checkout of an older commit,
// so the same script measures before and after a change. Every child is killed at its deadline.

import { spawn, type ChildProcess } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { reservePorts } from '../src/embedded/kafka/ports.ts';
import { fmt, printEnvironment, printTable } from './lib/common.ts';

const { values: args } = parseArgs({
  options: {
    kgate: { type: 'string', default: 'src/cli/main.ts' },
    'deadline-seconds': { type: 'string', default: '180' },
    'watch-seconds': { type: 'string', default: '40' },
    parts: { type: 'string', default: 'bombs,largest,reload' },
  },
});
const PARTS = new Set(args.parts.split(','));
const KGATE = resolve(args.kgate);
const DEADLINE_MS = Number(args['deadline-seconds']) * 1000;
const WATCH_MS = Number(args['watch-seconds']) * 1000;
const FIXTURES = new URL('../test/fixtures/config/', import.meta.url);

interface Run {
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly peakRss: () => number;
  readonly ended: Promise<string>;
}

/** Peak resident memory of a process so far, from the kernel's high-water mark. */
async function highWaterMark(pid: number): Promise<number> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    return Number(/^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

function run(argv: readonly string[], deadlineMs: number): Run {
  const child = spawn(process.execPath, [KGATE, ...argv], {
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '', KGATE_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  let peak = 0;
  const sampler = setInterval(() => {
    if (child.pid !== undefined) void highWaterMark(child.pid).then((rss) => (peak = Math.max(peak, rss)));
  }, 100);
  const deadline = setTimeout(() => child.kill('SIGKILL'), deadlineMs);
  const ended = new Promise<string>((resolve) =>
    child.on('close', (code, signal) => {
      clearInterval(sampler);
      clearTimeout(deadline);
      resolve(signal === null ? `exit ${code}` : `killed by ${signal}`);
    }),
  );
  return { child, output: () => output, peakRss: () => peak, ended };
}

const MiB = 1024 * 1024;
const firstLine = (text: string, pattern: RegExp): string =>
  (text.split('\n').find((line) => pattern.test(line)) ?? '').slice(0, 120);

async function validateRows(): Promise<string[][]> {
  const rows: string[][] = [];
  for (const name of ['alias-bomb.yaml', 'mapping-bomb.yaml']) {
    const file = new URL(name, FIXTURES).pathname;
    const bytes = (await readFile(file)).length;
    const started = Date.now();
    const validate = run(['validate', '-c', file], DEADLINE_MS);
    const ended = await validate.ended;
    rows.push([
      `validate ${name} (${bytes} B)`,
      fmt((Date.now() - started) / 1000, 1),
      fmt(validate.peakRss() / MiB),
      ended,
      firstLine(validate.output(), /\S/),
    ]);
  }
  return rows;
}

async function largestRows(): Promise<string[][]> {
  const size = 256 * 1024 - 64;
  const shapes: Record<string, string> = {
    'flow list of short scalars': `x: [${'a,'.repeat(size / 2 - 4)}]\n`,
    'mapping of many keys': Array.from({ length: Math.floor(size / 12) }, (_, i) => `k${i}: v\n`).join(''),
    'aliases of one scalar': `s: &s x\nl: [${'*s,'.repeat(size / 3 - 8)}]\n`,
    'flow nesting': `x: ${'['.repeat(size / 2 - 4)}${']'.repeat(size / 2 - 4)}\n`,
  };
  const dir = await mkdtemp(join(tmpdir(), 'kgate-bench-largest-'));
  const rows: string[][] = [];
  try {
    for (const [shape, text] of Object.entries(shapes)) {
      const file = join(dir, 'largest.yaml');
      await writeFile(file, text);
      const started = Date.now();
      const validate = run(['validate', '-c', file], DEADLINE_MS);
      const ended = await validate.ended;
      rows.push([
        `validate ${fmt(Buffer.byteLength(text))} B: ${shape}`,
        fmt((Date.now() - started) / 1000, 1),
        fmt(validate.peakRss() / MiB),
        ended,
        firstLine(validate.output(), /\S/),
      ]);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return rows;
}

async function reloadRow(): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'kgate-bench-bombs-'));
  try {
    const bomb = new URL('mapping-bomb.yaml', FIXTURES);
    const [port] = (await reservePorts(1)).ports;
    await mkdir(join(dir, 'site'));
    await writeFile(join(dir, 'site', 'index.html'), 'served');
    const file = join(dir, 'kgate.yaml');
    const working = (await readFile(bomb, 'utf8'))
      .replace(/^ {6}l\d: .*\n/gm, '')
      .replace('port: 0', `port: ${port}`);
    await writeFile(file, working);
    const gateway = run(['start', '-c', file, '--cache-dir', join(dir, 'cache')], WATCH_MS + 60_000);
    const serves = async (): Promise<boolean> => {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/index.html`, {
          signal: AbortSignal.timeout(2_000),
        });
        return (await res.text()) === 'served';
      } catch {
        return false;
      }
    };
    const startedBy = Date.now() + 30_000;
    while (!(await serves()) && Date.now() < startedBy) await new Promise((r) => setTimeout(r, 100));
    await copyFile(bomb, file);
    const copied = Date.now();
    let outcome = 'still serving';
    let exited: string | undefined;
    void gateway.ended.then((how) => (exited = how));
    while (Date.now() - copied < WATCH_MS) {
      await new Promise((r) => setTimeout(r, 500));
      if (exited !== undefined) {
        outcome = `died after ${fmt((Date.now() - copied) / 1000, 1)} s (${exited})`;
        break;
      }
    }
    if (exited === undefined && !(await serves())) outcome = 'alive, not serving';
    gateway.child.kill('SIGTERM');
    await gateway.ended;
    return [
      `mapping-bomb.yaml copied over a running kgate's config, watched ${WATCH_MS / 1000} s`,
      '',
      fmt(gateway.peakRss() / MiB),
      outcome,
      firstLine(gateway.output(), /reload|fatal|heap/i),
    ];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

printEnvironment(
  `node bench/config-bombs.ts --kgate ${args.kgate} --deadline-seconds ${args['deadline-seconds']} --watch-seconds ${args['watch-seconds']} --parts ${args.parts}`,
);
const rows = [
  ...(PARTS.has('bombs') ? await validateRows() : []),
  ...(PARTS.has('largest') ? await largestRows() : []),
  ...(PARTS.has('reload') ? [await reloadRow()] : []),
];
printTable(['run', 'seconds', 'peak RSS MiB', 'ended', 'first line'], rows);
