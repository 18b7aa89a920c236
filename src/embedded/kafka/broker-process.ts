import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, createWriteStream, openSync } from 'node:fs';
import { open, rm, writeFile } from 'node:fs/promises';
import type { KafkaLibs } from './libs.ts';
import { trackProcess, untrackProcess } from './reaper.ts';

export interface JvmOptions {
  /** Maximum heap, e.g. '512m'. */
  readonly heap: string;
  readonly log4jConfigFile: string;
}

function javaCommand(): string {
  const home = process.env['JAVA_HOME'];
  return home !== undefined && home !== '' ? `${home}/bin/java` : 'java';
}

/** Tuned for a short-lived test broker: start in seconds, stay small, never a production setup. */
function jvmArguments(libs: KafkaLibs, jvm: JvmOptions): string[] {
  return [
    `-Xmx${jvm.heap}`,
    '-Xms64m',
    '-Xss512k',
    // Serial GC and C1 only: noticeably faster startup and fewer threads than the G1/C2 defaults.
    '-XX:+UseSerialGC',
    '-XX:TieredStopAtLevel=1',
    '-XX:+ExitOnOutOfMemoryError',
    '-XX:-UsePerfData',
    '-Djava.awt.headless=true',
    `-Dlog4j2.configurationFile=${jvm.log4jConfigFile}`,
    '-cp',
    // The JVM expands the wildcard itself; no shell is involved.
    libs.classPath,
  ];
}

/** Last `lines` lines of a log file, for error messages that explain why a broker did not come up. */
export async function tailFile(file: string, lines = 40, maxBytes = 64 * 1024): Promise<string> {
  try {
    const handle = await open(file, 'r');
    try {
      const { size } = await handle.stat();
      const length = Math.min(size, maxBytes);
      const buffer = Buffer.alloc(length);
      await handle.read(buffer, 0, length, size - length);
      return buffer
        .toString('utf8')
        .split('\n')
        .slice(-lines - 1)
        .join('\n');
    } finally {
      await handle.close();
    }
  } catch {
    return '(no log)';
  }
}

function runJava(what: string, args: readonly string[], logFile: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const fd = openSync(logFile, 'a');
    const child = spawn(javaCommand(), args, { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    trackProcess(child);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) {
        resolve();
        return;
      }
      void tailFile(logFile, 30).then((tail) =>
        reject(new Error(`${what} failed (${signal ?? `exit ${code}`}); last lines of ${logFile}:\n${tail}`)),
      );
    });
  });
}

/** Writes the KRaft metadata (cluster id, quorum, SCRAM users) a node needs before its first start. */
export function formatStorage(
  libs: KafkaLibs,
  jvm: JvmOptions,
  configFile: string,
  clusterId: string,
  extraArgs: readonly string[],
  logFile: string,
): Promise<void> {
  return runJava(
    'formatting the Kafka storage (kafka.tools.StorageTool)',
    [
      ...jvmArguments(libs, jvm),
      'kafka.tools.StorageTool',
      'format',
      '--cluster-id',
      clusterId,
      '--config',
      configFile,
      ...extraArgs,
    ],
    logFile,
  );
}

export interface BrokerProcessOptions {
  readonly libs: KafkaLibs;
  readonly jvm: JvmOptions;
  readonly configFile: string;
  readonly logFile: string;
  readonly pidFile: string;
  readonly verbose: boolean;
  readonly label: string;
}

/** One running `kafka.Kafka` JVM. */
export class BrokerProcess {
  readonly #options: BrokerProcessOptions;
  readonly #child: ChildProcess;
  readonly #exited: Promise<void>;
  #exitCode: number | null = null;
  #exitSignal: NodeJS.Signals | null = null;
  #running = true;

  private constructor(options: BrokerProcessOptions, child: ChildProcess) {
    this.#options = options;
    this.#child = child;
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#running = false;
        this.#exitCode = code;
        this.#exitSignal = signal;
        void rm(options.pidFile, { force: true }).finally(resolve);
      });
    });
  }

  static async start(options: BrokerProcessOptions): Promise<BrokerProcess> {
    const args = [...jvmArguments(options.libs, options.jvm), 'kafka.Kafka', options.configFile];
    let child: ChildProcess;
    if (options.verbose) {
      child = spawn(javaCommand(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
      const log = createWriteStream(options.logFile, { flags: 'a' });
      const prefix = `[${options.label}] `;
      for (const stream of [child.stdout, child.stderr]) {
        stream?.on('data', (chunk: Buffer) => {
          log.write(chunk);
          process.stderr.write(
            chunk
              .toString('utf8')
              .split(/(?<=\n)/)
              .map((line) => prefix + line)
              .join(''),
          );
        });
      }
      child.once('close', () => log.end());
    } else {
      // The JVM writes straight into the file: no pipe for Node to drain, and the log survives us.
      const fd = openSync(options.logFile, 'a');
      child = spawn(javaCommand(), args, { stdio: ['ignore', fd, fd] });
      closeSync(fd);
    }
    trackProcess(child);
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    await writeFile(options.pidFile, `${child.pid ?? ''}\n`);
    return new BrokerProcess(options, child);
  }

  get running(): boolean {
    return this.#running;
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Why the process ended, for error messages; undefined while it runs. */
  get exitDescription(): string | undefined {
    if (this.#running) return undefined;
    return this.#exitSignal !== null ? `killed by ${this.#exitSignal}` : `exited with code ${this.#exitCode}`;
  }

  get exited(): Promise<void> {
    return this.#exited;
  }

  logTail(lines = 40): Promise<string> {
    return tailFile(this.#options.logFile, lines);
  }

  /** SIGTERM lets Kafka shut down cleanly (controlled shutdown, flushed logs); SIGKILL if it dawdles. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.#running) {
      this.#child.kill('SIGTERM');
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), graceMs);
      try {
        await this.#exited;
      } finally {
        clearTimeout(timer);
      }
    }
    await this.#exited;
    untrackProcess(this.#child);
  }

  /** SIGKILL: the broker dies mid-request, with no controlled shutdown and nothing flushed. */
  async kill(): Promise<void> {
    if (this.#running) this.#child.kill('SIGKILL');
    await this.#exited;
    untrackProcess(this.#child);
  }
}
