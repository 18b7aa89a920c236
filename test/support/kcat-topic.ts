import { spawn } from 'node:child_process';

/** One record of a partition as kcat, a client kgate did not write, reads it. */
export interface KcatRecord {
  readonly offset: bigint;
  readonly key: string;
  readonly value: string;
}

/**
 * Every record of one partition from its log start to its end now, read by kcat. Keys and values
 * must be text without tabs or line breaks (the records of fault tests are).
 */
export function kcatPartition(bootstrap: string, topic: string, partition: number): Promise<KcatRecord[]> {
  const args = ['-b', bootstrap, '-C', '-t', topic, '-p', String(partition), '-o', 'beginning', '-e'];
  return new Promise((resolve, reject) => {
    const child = spawn('kcat', [...args, '-q', '-f', '%o\\t%k\\t%s\\n'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) {
        reject(new Error(`kcat exited ${code}: ${err}`));
        return;
      }
      const lines = Buffer.concat(out).toString('utf8').split('\n');
      const records: KcatRecord[] = [];
      for (const line of lines) {
        if (line === '') continue;
        const [offset, key, value] = line.split('\t');
        records.push({ offset: BigInt(offset ?? '-1'), key: key ?? '', value: value ?? '' });
      }
      resolve(records);
    });
  });
}

/** Lost, duplicated and reordered records of `got` against `expected` (one partition, by offset). */
export function compareRecords(
  expected: readonly KcatRecord[],
  got: readonly { readonly offset: bigint; readonly value: string }[],
): { lost: number; duplicated: number; reordered: number; different: number } {
  const seen = new Map<bigint, number>();
  let reordered = 0;
  let last = -1n;
  for (const r of got) {
    seen.set(r.offset, (seen.get(r.offset) ?? 0) + 1);
    if (r.offset <= last) reordered++;
    last = r.offset;
  }
  let lost = 0;
  let different = 0;
  const values = new Map(got.map((r) => [r.offset, r.value]));
  for (const r of expected) {
    const value = values.get(r.offset);
    if (value === undefined) lost++;
    else if (value !== r.value) different++;
  }
  let duplicated = 0;
  for (const n of seen.values()) if (n > 1) duplicated += n - 1;
  return { lost, duplicated, reordered, different };
}
