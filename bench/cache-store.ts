// Append and read throughput of the LMDB partition store.
//   node bench/cache-store.ts [--messages N] [--dir PATH] [--keys K] [--durability sync|overlapped|none]
// Records are built before timing: what is measured is the store, not the record source.

import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CacheStore } from '../src/bindings/kafka/cache/index.ts';
import type { RecordInput } from '../src/bindings/kafka/cache/index.ts';

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '500000' },
    dir: { type: 'string' },
    keys: { type: 'string', default: '100000' },
    durability: { type: 'string', default: 'sync' },
  },
});
const messages = Number(args.messages);
const distinctKeys = Number(args.keys);
const BATCH = 500;
const durability = args.durability as 'sync' | 'overlapped' | 'none';

interface Case {
  name: string;
  valueSize: number;
  keyed: boolean;
  messages: number;
  /** Batches per CacheStore.transaction, as when one fetch response carries several. */
  group: number;
}

const cases: Case[] = [
  { name: '100 B values, keyed', valueSize: 100, keyed: true, messages, group: 1 },
  { name: '100 B values, keyed, 8 batches per txn', valueSize: 100, keyed: true, messages, group: 8 },
  { name: '100 B values, no key', valueSize: 100, keyed: false, messages, group: 1 },
  { name: '1 KB values, keyed', valueSize: 1024, keyed: true, messages: Math.ceil(messages / 2), group: 1 },
  {
    name: '1 KB values, keyed, 8 batches per txn',
    valueSize: 1024,
    keyed: true,
    messages: Math.ceil(messages / 2),
    group: 8,
  },
];

function batches(c: Case): RecordInput[][] {
  const values = Array.from({ length: 256 }, (_, i) => Buffer.alloc(c.valueSize, i));
  const keys = c.keyed
    ? Array.from({ length: distinctKeys }, (_, i) => Buffer.from(`key-${i.toString().padStart(10, '0')}`))
    : [];
  const out: RecordInput[][] = [];
  const t0 = 1_700_000_000_000;
  for (let o = 0; o < c.messages; o += BATCH) {
    const batch: RecordInput[] = [];
    for (let i = o; i < Math.min(o + BATCH, c.messages); i++) {
      batch.push({
        offset: BigInt(i),
        timestamp: t0 + Math.floor(i / 100),
        key: c.keyed ? (keys[(i * 7919) % distinctKeys] ?? null) : null,
        value: values[i & 255] ?? null,
      });
    }
    out.push(batch);
  }
  return out;
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

const root = args.dir ?? mkdtempSync(join(tmpdir(), 'kgate-bench-'));
console.log(
  `load average ${loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')}`,
);
console.log(`node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), store in ${root}`);
console.log(
  `reproduce: node bench/cache-store.ts --messages ${messages} --keys ${distinctKeys} --durability ${durability}${args.dir === undefined ? '' : ` --dir ${args.dir}`}`,
);
console.log(`batches of ${BATCH}; bytes are key + value bytes as received from Kafka\n`);

for (const c of cases) {
  const dir = join(root, c.name.replace(/[^a-z0-9]+/gi, '-'));
  const input = batches(c);
  const payload = input.flat().reduce((n, r) => n + (r.key?.length ?? 0) + (r.value?.length ?? 0), 0);
  const store = CacheStore.open(dir, { durability });
  const p = store.partition('bench', 0);

  let t = performance.now();
  if (c.group === 1) for (const b of input) p.append(b);
  else
    for (let i = 0; i < input.length; i += c.group)
      store.transaction(() => {
        for (const b of input.slice(i, i + c.group)) p.append(b);
      });
  let ms = performance.now() - t;
  console.log(
    `append ${c.name}: ${fmt((c.messages / ms) * 1000)} msgs/s, ${(((payload / ms) * 1000) / 1e6).toFixed(1)} MB/s` +
      ` (${fmt(c.messages)} msgs in ${ms.toFixed(0)} ms)`,
  );

  let read = 0;
  t = performance.now();
  for (let at = 0n; ;) {
    const r = p.read(at, { maxRecords: 500, maxBytes: 1024 * 1024 });
    if (r.records.length === 0) break;
    read += r.records.length;
    at = r.nextOffset;
  }
  ms = performance.now() - t;
  if (read !== c.messages) throw new Error(`read ${read} of ${c.messages}`);
  console.log(
    `read   ${c.name}: ${fmt((read / ms) * 1000)} msgs/s, ${(((payload / ms) * 1000) / 1e6).toFixed(1)} MB/s`,
  );

  t = performance.now();
  let found = 0;
  if (c.keyed) {
    const probe = (input[input.length - 1] ?? []).map((r) => r.key ?? Buffer.alloc(0));
    for (let i = 0; i < 100_000; i++)
      if (p.latestOffsetOf(probe[i % probe.length] ?? Buffer.alloc(0)) !== null) found++;
    ms = performance.now() - t;
    console.log(`lookup ${c.name}: ${fmt((found / ms) * 1000)} latestOffsetOf/s`);
  }

  const s = store.stats();
  console.log(
    `stored ${c.name}: ${(s.bytes / 1e6).toFixed(1)} MB encoded, LMDB file in use ${(s.fileBytes / 1e6).toFixed(1)} MB\n`,
  );
  await store.close();
}

if (args.dir === undefined) rmSync(root, { recursive: true, force: true });
