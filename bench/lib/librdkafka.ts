// The librdkafka peer: @confluentinc/kafka-javascript when bench/'s own package is installed
// (`npm install --prefix bench`, a native build), kcat otherwise. It is loaded at run time so that
// type checking and the other benchmarks do not depend on the native module being built.

import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';

/** The part of the binding's API the benchmarks use. */
export interface RdMessage {
  readonly value: Buffer | null;
  readonly partition: number;
  readonly offset: number;
}

export interface RdError extends Error {
  readonly code: number;
}

export interface RdClient {
  connect(options: object, cb: (error: RdError | null) => void): void;
  disconnect(cb: (error: unknown) => void): void;
  on(event: 'event.error', listener: (error: RdError) => void): void;
}

export interface RdConsumer extends RdClient {
  assign(assignments: { topic: string; partition: number; offset: number }[]): void;
  consume(count: number, cb: (error: RdError | null, messages: RdMessage[]) => void): void;
  setDefaultConsumeTimeout(ms: number): void;
  /** Newer versions only: wait for the first message of a consume(n) call, not for each one. */
  setDefaultIsTimeoutOnlyForFirstMessage?: (set: boolean) => void;
}

export interface RdDeliveryReport {
  readonly partition: number;
  readonly offset: number;
  readonly opaque: unknown;
}

export interface RdProducer extends RdClient {
  produce(topic: string, partition: number, value: Buffer, key: null, timestamp: null, opaque: unknown): void;
  setPollInterval(ms: number): void;
  /** Newer versions only. */
  setPollInBackground?: (set: boolean) => void;
  flush(timeoutMs: number, cb: (error: RdError | null) => void): void;
  on(event: 'delivery-report', listener: (error: RdError | null, report: RdDeliveryReport) => void): void;
  on(event: 'event.error', listener: (error: RdError) => void): void;
}

export interface RdKafka {
  readonly librdkafkaVersion: string;
  readonly KafkaConsumer: new (
    config: Record<string, unknown>,
    topicConfig?: Record<string, unknown>,
  ) => RdConsumer;
  readonly Producer: new (
    config: Record<string, unknown>,
    topicConfig?: Record<string, unknown>,
  ) => RdProducer;
}

/** The binding, or the reason it cannot be used. */
export function loadRdKafka(): RdKafka | string {
  // createRequire from this file finds bench/node_modules; the binding is CommonJS.
  const require = createRequire(import.meta.url);
  try {
    return require('@confluentinc/kafka-javascript') as RdKafka;
  } catch (error) {
    return error instanceof Error ? (error.message.split('\n')[0] ?? error.message) : String(error);
  }
}

export function connect(client: RdClient, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    signal.throwIfAborted();
    client.connect({}, (error) => (error === null ? resolve() : reject(error)));
  });
}

export function disconnect(client: RdClient): Promise<void> {
  return new Promise((resolve) => client.disconnect(() => resolve()));
}

/** kcat's librdkafka version, from `kcat -V`. */
export async function kcatVersion(): Promise<string | undefined> {
  return new Promise((resolve) => {
    const child = spawn('kcat', ['-V'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('error', () => resolve(undefined));
    child.on('close', () => resolve(/librdkafka ([0-9][^\s]*)/.exec(out)?.[1]));
  });
}

/**
 * Reads every partition of `topic` from the beginning to the end with kcat. The format is empty,
 * so kcat writes nothing per message and the time is librdkafka's fetching plus the process start.
 */
export function kcatReadAll(bootstrap: string, topic: string, signal: AbortSignal): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(
      'kcat',
      [
        '-C',
        '-b',
        bootstrap,
        '-t',
        topic,
        '-e',
        '-o',
        'beginning',
        '-q',
        '-f',
        '',
        '-X',
        'fetch.wait.max.ms=250',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], signal },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(performance.now() - started);
      else reject(new Error(`kcat exited with ${String(code)}: ${stderr.trim()}`));
    });
  });
}
