import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { ProducedMessage } from './types.ts';

function bytes(value: string | Buffer): Buffer {
  return typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
}

/**
 * One kcat run: messages that share a target partition, the same headers and the same -Z mode
 * (kcat applies -p, -H and -Z to everything it reads in one run).
 */
interface Batch {
  readonly partition: number | undefined;
  readonly headers: readonly (readonly [string, string])[];
  /** -Z turns an empty value into a null one, so null and empty values cannot share a run. */
  nullValues: boolean | undefined;
  readonly messages: ProducedMessage[];
}

function headerEntries(message: ProducedMessage): [string, string][] {
  const entries = Object.entries(message.headers ?? {});
  for (const [name] of entries) {
    if (name.includes('=') || name === '')
      throw new Error(`header name ${JSON.stringify(name)} cannot be passed to kcat`);
  }
  return entries;
}

function sameHeaders(
  a: readonly (readonly [string, string])[],
  b: readonly (readonly [string, string])[],
): boolean {
  return a.length === b.length && a.every(([name, value], i) => b[i]?.[0] === name && b[i]?.[1] === value);
}

/**
 * kcat's -Z turns empty values into null ones, and empty keys into null keys as well. So a null
 * value needs -Z, an empty value or an empty key must not have it, and anything else works with
 * either (undefined).
 */
function needsNullMode(message: ProducedMessage): boolean | undefined {
  const key = message.key === undefined || message.key === null ? null : bytes(message.key);
  const value = message.value === null ? null : bytes(message.value);
  if (key === null && value === null) {
    // kcat skips empty input, so there would be nothing to send at all.
    throw new Error('kcat cannot produce a record whose key and value are both null');
  }
  if (value === null) {
    if (key?.length === 0) throw new Error('kcat cannot produce a record with an empty key and a null value');
    return true;
  }
  if (value.length === 0 || key?.length === 0) return false;
  return undefined;
}

function batches(messages: readonly ProducedMessage[]): Batch[] {
  const result: Batch[] = [];
  for (const message of messages) {
    const headers = headerEntries(message);
    const needs = needsNullMode(message);
    const last = result.at(-1);
    if (
      last !== undefined &&
      last.partition === message.partition &&
      sameHeaders(last.headers, headers) &&
      (needs === undefined || last.nullValues === undefined || last.nullValues === needs)
    ) {
      last.messages.push(message);
      last.nullValues ??= needs;
    } else {
      result.push({ partition: message.partition, headers, nullValues: needs, messages: [message] });
    }
  }
  return result;
}

/**
 * Delimiters kcat splits its input on. Random per run and checked against the payload, so any
 * bytes (NUL, newlines, invalid UTF-8) can travel in keys and values.
 */
function delimiterAbsentFrom(parts: readonly Buffer[], avoid: string): string {
  for (;;) {
    const candidate = `~kgate${randomBytes(12).toString('hex')}~`;
    const needle = Buffer.from(candidate);
    if (candidate !== avoid && !parts.some((part) => part.includes(needle))) return candidate;
  }
}

function encode(batch: Batch): { input: Buffer; keyDelimiter: string; messageDelimiter: string } {
  const parts: Buffer[] = [];
  for (const m of batch.messages) {
    if (m.key !== undefined && m.key !== null) parts.push(bytes(m.key));
    if (m.value !== null) parts.push(bytes(m.value));
  }
  const keyDelimiter = delimiterAbsentFrom(parts, '');
  const messageDelimiter = delimiterAbsentFrom(parts, keyDelimiter);
  const chunks: Buffer[] = [];
  for (const m of batch.messages) {
    // Without a key delimiter kcat sends no key at all (null), which is how null keys are told
    // apart from empty ones.
    if (m.key !== undefined && m.key !== null) chunks.push(bytes(m.key), Buffer.from(keyDelimiter));
    if (m.value !== null) chunks.push(bytes(m.value));
    chunks.push(Buffer.from(messageDelimiter));
  }
  return { input: Buffer.concat(chunks), keyDelimiter, messageDelimiter };
}

function runKcat(args: readonly string[], input: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('kcat', args, { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-8000);
    });
    child.on('error', (error: NodeJS.ErrnoException) => {
      reject(
        error.code === 'ENOENT'
          ? new Error('`kcat` is not on PATH; install it (Debian: apt-get install kcat)')
          : error,
      );
    });
    child.stdin.on('error', () => undefined);
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`kcat ${args.join(' ')} failed (${signal ?? `exit ${code}`}): ${stderr.trim()}`));
    });
    child.stdin.end(input);
  });
}

/**
 * Produces `messages` in order with kcat (librdkafka), a client independent of kgate's own.
 * Keys and values are byte-exact (any bytes, including NUL and newlines); null keys, empty keys,
 * empty values and null values (tombstones) are supported. What kcat cannot express: a record
 * with both key and value null, or with an empty key and a null value. Header values are strings
 * passed on kcat's command line, so they cannot contain NUL, and a run's messages share headers,
 * so messages with different headers are sent by separate kcat runs (still in order).
 */
export async function produceWithKcat(
  bootstrap: string,
  topic: string,
  messages: readonly ProducedMessage[],
): Promise<void> {
  for (const batch of batches(messages)) {
    const { input, keyDelimiter, messageDelimiter } = encode(batch);
    const args = [
      '-P',
      '-b',
      bootstrap,
      '-t',
      topic,
      '-K',
      keyDelimiter,
      '-D',
      messageDelimiter,
      // The Java client's partitioner, so keyed messages land where Java (and kgate) expect them.
      '-X',
      'partitioner=murmur2_random',
      // No reordering on retry: the messages of a run arrive in the order given.
      '-X',
      'enable.idempotence=true',
      '-X',
      'message.timeout.ms=30000',
    ];
    if (batch.partition !== undefined) args.push('-p', String(batch.partition));
    for (const [name, value] of batch.headers) args.push('-H', `${name}=${value}`);
    if (batch.nullValues === true) args.push('-Z');
    await runKcat(args, input);
  }
}
