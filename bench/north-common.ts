// Shared pieces of the north-side benchmarks. kgate (engine, cache and HTTP server) runs in the
// benchmark's own process, so its metrics registry and RSS are read directly; the load (HTTP and
// SSE clients, the producers) runs in a forked child process, so generating load does not take
// event-loop time from the gateway being measured. The broker is the embedded JVM, a third process.

import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Counter } from 'prom-client';
import { composition, defaultRegistry } from '../src/bindings/index.ts';
import { TcpServerBinding } from '../src/bindings/tcp/server.ts';
import { parseConfig } from '../src/config/index.ts';
import { Engine } from '../src/engine/engine.ts';
import { startGateway as startRuntime } from '../src/engine/runtime.ts';
import { reservePort } from '../test/support/ports.ts';
import { fmt, percentile } from './lib/common.ts';

export interface Gateway {
  readonly engine: Engine;
  readonly port: number;
  stop(): Promise<void>;
}

/**
 * Starts kgate from `bindings` (YAML lines below `bindings:`, after the `topLevel` lines such as a
 * `telemetry` section), which must name a tcp server
 * `north_tcp` listening on port 0; the system-chosen port is returned. With `workers`, kgate runs
 * as `kgate start --workers N` does (the runtime, worker threads in this process), and port 0 is
 * replaced by a reserved port first, since every thread must listen on the same one.
 */
export async function startGateway(
  name: string,
  bindings: readonly string[],
  options: { readonly workers?: number; readonly topLevel?: readonly string[] } = {},
): Promise<Gateway> {
  const head = [`name: ${name}`, ...(options.topLevel ?? []), 'bindings:'];
  const stateDir = await mkdtemp(join(tmpdir(), `kgate-bench-${name}-`));
  const workers = options.workers ?? 0;
  if (workers > 0) {
    const port = await reservePort();
    const lines = bindings.map((line) =>
      line.includes('north_tcp:') ? line.replace('port: 0', `port: ${port}`) : line,
    );
    const configFile = join(stateDir, `${name}.yaml`);
    await writeFile(configFile, [...head, ...lines].join('\n'));
    const running = await startRuntime({
      configFile,
      composition,
      logger: pino({ level: 'silent' }),
      stateDir: join(stateDir, 'cache'),
      workers,
      env: {},
    });
    return {
      engine: running.engine,
      port,
      stop: async () => {
        await running.stop(5_000);
        await rm(stateDir, { recursive: true, force: true });
      },
    };
  }
  const yaml = [...head, ...bindings].join('\n');
  const engine = new Engine(parseConfig(yaml, `${name}.yaml`), defaultRegistry(), {
    logger: pino({ level: 'silent' }),
    stateDir,
  });
  await engine.start();
  const stop = async (): Promise<void> => {
    await engine.stop(5_000);
    await rm(stateDir, { recursive: true, force: true });
  };
  const tcp = engine.binding('north_tcp');
  const port = tcp instanceof TcpServerBinding ? tcp.ports[0] : undefined;
  if (port === undefined) {
    await stop();
    throw new Error('north_tcp is not a listening tcp server');
  }
  return { engine, port, stop };
}

export async function kgateFetches(engine: Engine): Promise<number> {
  const metric = engine.metrics.getSingleMetric('kgate_kafka_client_requests_total') as Counter | undefined;
  if (metric === undefined) return NaN;
  const { values } = await metric.get();
  return values
    .filter((v) => String(v.labels['api']).toLowerCase() === 'fetch')
    .reduce((a, v) => a + v.value, 0);
}

/** Peak RSS of this process, sampled every 100 ms until stopped. */
export function sampleRss(): { peak: () => number; stop: () => void } {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 100);
  return { peak: () => peak, stop: () => clearInterval(timer) };
}

export function cpuMs(usage: NodeJS.CpuUsage): number {
  return (usage.user + usage.system) / 1000;
}

export const MiB = 2 ** 20;

/** Latency summary computed in the load process, so millions of samples never cross the IPC channel. */
export interface Latency {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

export function summarize(samples: Float64Array): Latency {
  const sorted = Float64Array.from(samples).sort();
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.length === 0 ? NaN : (sorted[sorted.length - 1] ?? NaN),
  };
}

export function ms(n: number | null): string {
  // NaN crosses the IPC channel as null: no samples.
  return n === null || Number.isNaN(n) ? '-' : fmt(n, 2);
}

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes. */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

/** Growable sample buffer without boxing every number. */
export class Samples {
  #data = new Float64Array(1 << 16);
  #length = 0;

  push(value: number): void {
    if (this.#length === this.#data.length) {
      const grown = new Float64Array(this.#data.length * 2);
      grown.set(this.#data);
      this.#data = grown;
    }
    this.#data[this.#length++] = value;
  }

  get length(): number {
    return this.#length;
  }

  view(): Float64Array {
    return this.#data.subarray(0, this.#length);
  }
}

/**
 * Forks this same script as the load process (`--role load`) and exchanges typed messages with it.
 * The child is killed on the way out if it has not exited by then.
 */
export class LoadProcess<Up, Down> {
  readonly #child: ChildProcess;
  readonly #queue: Up[] = [];
  readonly #waiters: ((message: Up) => void)[] = [];
  readonly #exited: Promise<void>;
  #failure: Error | undefined;

  constructor(script: string, args: readonly string[]) {
    this.#child = fork(script, [...args, '--role', 'load'], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      // A --cpu-prof of the gateway must not profile the load too.
      execArgv: [],
    });
    this.#child.on('message', (message) => {
      const waiter = this.#waiters.shift();
      if (waiter !== undefined) waiter(message as Up);
      else this.#queue.push(message as Up);
    });
    this.#exited = new Promise((resolve) => {
      this.#child.once('exit', (code, signal) => {
        this.#failure = new Error(`load process exited (${String(code ?? signal)})`);
        resolve();
      });
    });
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  send(message: Down): void {
    this.#child.send(message as object);
  }

  async next(): Promise<Up> {
    const queued = this.#queue.shift();
    if (queued !== undefined) return queued;
    if (this.#failure !== undefined) throw this.#failure;
    return await Promise.race([
      new Promise<Up>((resolve) => this.#waiters.push(resolve)),
      this.#exited.then(() => {
        throw this.#failure ?? new Error('load process exited');
      }),
    ]);
  }

  async close(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5_000);
      this.#child.disconnect();
      await this.#exited;
      clearTimeout(timer);
    }
  }
}

/** The load side of LoadProcess: messages from the parent, and a way to answer. */
export function parentChannel<Down, Up>(): { next: () => Promise<Down>; send: (message: Up) => void } {
  const queue: Down[] = [];
  const waiters: ((message: Down) => void)[] = [];
  process.on('message', (message) => {
    const waiter = waiters.shift();
    if (waiter !== undefined) waiter(message as Down);
    else queue.push(message as Down);
  });
  // The parent going away (finished or crashed) ends the load process too.
  process.on('disconnect', () => process.exit(0));
  return {
    next: () => {
      const queued = queue.shift();
      return queued !== undefined ? Promise.resolve(queued) : new Promise((resolve) => waiters.push(resolve));
    },
    send: (message) => void process.send?.(message),
  };
}

/**
 * Moves a process and all its threads to the given CPUs (taskset syntax, e.g. "0" or "1-3").
 * Threads and children started later inherit the set of the thread that starts them.
 */
export function pinProcess(pid: number, cpus: string): void {
  execFileSync('taskset', ['--all-tasks', '--cpu-list', '--pid', cpus, String(pid)], { stdio: 'ignore' });
}
