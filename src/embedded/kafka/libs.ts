import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The package root: three levels up both from src/embedded/kafka/ (running the sources) and from
 * dist/embedded/kafka/ (the published build), so the cache lands in the same place either way.
 */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const KAFKA_POM = join(PACKAGE_ROOT, 'tools', 'kafka', 'pom.xml');

const MARKER = '.complete';

export interface KafkaLibs {
  readonly version: string;
  /** Directory of the broker's jars; `${dir}/*` is the JVM class path. */
  readonly dir: string;
  readonly classPath: string;
}

/** The pom is the single place that names the Kafka version, so a bump there is all it takes. */
export function kafkaVersion(pom: string = KAFKA_POM): string {
  const match = /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(readFileSync(pom, 'utf8'));
  if (match?.[1] === undefined) throw new Error(`${pom} does not define <kafka.version>`);
  return match[1].trim();
}

/**
 * The marker holds a hash of the pom: editing the pom (a logging jar, a plugin version) refetches
 * even when the Kafka version, and so the directory name, stays the same.
 */
function pomHash(pom: string): string {
  return createHash('sha256').update(readFileSync(pom)).digest('hex');
}

export function kafkaLibsLocation(pom: string = KAFKA_POM): KafkaLibs {
  const override = process.env['KGATE_KAFKA_LIBS'];
  const version = kafkaVersion(pom);
  const dir =
    override !== undefined && override !== ''
      ? override
      : join(PACKAGE_ROOT, '.cache', 'kafka', version, 'libs');
  return { version, dir, classPath: join(dir, '*') };
}

/** Cheap enough to call before every broker start: one small file read when the jars are there. */
export function kafkaLibsPresent(libs: KafkaLibs, pom: string = KAFKA_POM): boolean {
  if (process.env['KGATE_KAFKA_LIBS'] !== undefined && process.env['KGATE_KAFKA_LIBS'] !== '') {
    return existsSync(libs.dir);
  }
  try {
    return readFileSync(join(libs.dir, MARKER), 'utf8').trim() === pomHash(pom);
  } catch {
    return false;
  }
}

export interface FetchOptions {
  readonly pom?: string;
  /** Where Maven's own progress goes; quiet by default. */
  readonly log?: (line: string) => void;
}

/**
 * Returns the broker's jar directory, downloading the jars through Maven first if they are not
 * there yet. Maven writes into a sibling temporary directory that is renamed into place only
 * after it succeeded, and the marker goes in last, so an interrupted download is simply redone.
 */
export async function ensureKafkaLibs(options: FetchOptions = {}): Promise<KafkaLibs> {
  const pom = options.pom ?? KAFKA_POM;
  const libs = kafkaLibsLocation(pom);
  if (kafkaLibsPresent(libs, pom)) return libs;
  if (process.env['KGATE_KAFKA_LIBS'] !== undefined && process.env['KGATE_KAFKA_LIBS'] !== '') {
    throw new Error(`KGATE_KAFKA_LIBS=${libs.dir} does not exist`);
  }

  const parent = dirname(libs.dir);
  await mkdir(parent, { recursive: true });
  const staging = join(parent, `libs.partial-${process.pid}-${Date.now()}`);
  try {
    options.log?.(`Fetching Apache Kafka ${libs.version} jars with Maven into ${libs.dir}`);
    await runMaven(pom, staging);
    const jars = (await readdir(staging)).filter((name) => name.endsWith('.jar'));
    if (!jars.some((name) => name.startsWith('kafka_2.13-'))) {
      throw new Error(`Maven finished but ${staging} holds no kafka_2.13 jar`);
    }
    await writeFile(join(staging, MARKER), `${pomHash(pom)}\n`);
    // Another process may have finished the same download meanwhile; either copy is complete.
    if (kafkaLibsPresent(libs, pom)) return libs;
    await rm(libs.dir, { recursive: true, force: true });
    await rename(staging, libs.dir);
    return libs;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

function runMaven(pom: string, outputDirectory: string): Promise<void> {
  const args = [
    '-B',
    '-q',
    '-f',
    pom,
    'dependency:copy-dependencies',
    `-DoutputDirectory=${outputDirectory}`,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn('mvn', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (chunk: Buffer): void => {
      // Only the tail matters for the error message; Maven can be chatty on failure.
      output = (output + chunk.toString('utf8')).slice(-8000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (error: NodeJS.ErrnoException) => {
      reject(
        error.code === 'ENOENT'
          ? new Error('`mvn` (Apache Maven) is not on PATH; it is needed once to download the Kafka jars')
          : error,
      );
    });
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`mvn ${args.join(' ')} failed (${signal ?? `exit ${code}`}):\n${output}`));
    });
  });
}
