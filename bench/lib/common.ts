// Shared pieces of the Kafka client benchmarks: the broker's lifetime, the environment header,
// statistics and table printing.

import { cpus, loadavg, totalmem } from 'node:os';
import { kafkaVersion, startKafka, type KafkaCluster } from '../../src/embedded/kafka/index.ts';

export const PARTITIONS = 8;

export function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function loadAverage(): string {
  return loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] ?? NaN)
    : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
}

/** Nearest-rank percentile of an already sorted array. */
export function percentile(sorted: Float64Array | readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? NaN;
}

export function printEnvironment(command: string): void {
  console.log(`command: ${command}`);
  console.log(
    `node ${process.version}, kafka ${kafkaVersion()}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ` +
      `${fmt(totalmem() / 2 ** 30, 1)} GiB, ${new Date().toISOString()}`,
  );
  console.log(`load average at start: ${loadAverage()}`);
}

/** Prints rows as an aligned Markdown table, so the output can be pasted into RESULTS.md. */
export function printTable(header: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ')} |`;
  console.log(line(header));
  console.log(
    `|${widths.map((w, i) => (i === 0 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`,
  );
  for (const row of rows) console.log(line(row));
}

/** Runs `body` against a fresh single-broker cluster, which is stopped however `body` ends. */
export async function withBroker<T>(
  deadlineMs: number,
  body: (cluster: KafkaCluster, signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const abort = new AbortController();
  const cluster = await startKafka();
  // A stuck client must not leave a broker behind or hang a CI job: the deadline aborts the run
  // and the broker is stopped on the way out either way.
  const timer = setTimeout(() => abort.abort(new Error(`benchmark exceeded ${deadlineMs} ms`)), deadlineMs);
  const onSignal = (): void => abort.abort(new Error('interrupted'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await Promise.race([
      body(cluster, abort.signal),
      new Promise<never>((_, reject) => {
        abort.signal.addEventListener('abort', () => reject(abort.signal.reason as Error), { once: true });
      }),
    ]);
  } finally {
    clearTimeout(timer);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cluster.stop();
  }
}

/** Rotates `items` by `round`, so every client runs first, middle and last across rounds. */
export function rotate<T>(items: readonly T[], round: number): T[] {
  const k = round % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

/** Payload buffers of one size with varied bytes, shared by every client so all send the same data. */
export function payloads(size: number, count = 64): Buffer[] {
  return Array.from({ length: count }, (_, i) => {
    const b = Buffer.alloc(size);
    for (let j = 0; j < size; j++) b[j] = (i * 31 + j * 7) & 0xff;
    return b;
  });
}
