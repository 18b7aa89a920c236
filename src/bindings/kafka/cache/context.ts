// What a CacheStore shares with its partitions and their maintenance: one LMDB environment, its six
// databases typed for the encodings chosen here, and the scratch buffers of its writers.

import { INDEX_KEY_MAX } from './layout.ts';
import { META_SIZE } from './meta.ts';

// ABORTABLE (a throw rolls the batch back) | SYNCHRONOUS_COMMIT (visible when transactionSync
// returns) | NO_SYNC_FLUSH (with durability 'overlapped', return before the flush).
export const TXN_FLAGS = 0x10003;

// Maintenance deletes at most this many records per write transaction and yields to the event
// loop between transactions, so a large expiry neither blocks fetch handling nor grows one
// transaction's dirty pages without bound.
export const CHUNK = 2048;

export interface RangeQuery {
  start?: Buffer;
  end?: Buffer;
  limit?: number;
  reverse?: boolean;
}

// The part of lmdb-js's Database used here, typed for the key and value encodings chosen below.
export interface Db<K> {
  putSync(key: Buffer, value: Buffer): boolean;
  removeSync(key: Buffer): boolean;
  getBinaryFast(key: Buffer): Buffer | undefined;
  getRange(query: RangeQuery): Iterable<{ key: K; value: Buffer }>;
  getKeys(query: RangeQuery): Iterable<K>;
}

export interface Root {
  openDB(options: object): unknown;
  transactionSync<T>(action: () => T, flags?: number): T;
  getStats(): unknown;
  /** Ends the current read snapshot, so the next read sees every commit made so far. */
  resetReadTxn(): void;
  close(): Promise<void>;
}

/**
 * Size of the value the records database decoded last: values arrive in lmdb-js's reusable read
 * buffer, which is larger than they are. Read it right after each step of an iteration over
 * `records`; importers see every update (an ES module's live binding).
 */
export let lastValueSize = 0;

// The records database hands values to this decoder in lmdb-js's reusable read buffer, without
// the copy its 'binary' encoding makes. Callers copy what they keep before the next read.
const rawValues = {
  encode(value: Buffer): Buffer {
    return value;
  },
  decode(bytes: Buffer, size: number): Buffer {
    lastValueSize = size;
    return bytes;
  },
};

// Record keys are [pid u32 BE][offset u64 BE]; reading returns the offset alone, which saves
// slicing a key buffer per record.
const offsetKeys = {
  writeKey(key: Buffer, target: Buffer, start: number): number {
    return start + key.copy(target, start);
  },
  readKey(buf: Buffer, start: number): bigint {
    return buf.readBigUInt64BE(start + 4);
  },
};

/** Shared by a CacheStore and its partitions: one LMDB environment and the scratch buffers of its writers. */
export interface Context {
  root: Root;
  catalog: Db<Buffer>;
  meta: Db<Buffer>;
  records: Db<bigint>;
  keys: Db<Buffer>;
  times: Db<Buffer>;
  pending: Db<Buffer>;
  closed: boolean;
  /** Opened with `reader`: every write refuses. */
  reader: boolean;
  running: Set<Promise<unknown>>;
  /** Inside CacheStore.transaction: how to restore in-memory state if the outer transaction fails. */
  group: Array<() => void> | null;
  // Every use below is synchronous, so one set of scratch buffers serves all partitions.
  recKey: Buffer;
  idxKey: Buffer;
  pendKey: Buffer;
  timeKey: Buffer;
  offsetValue: Buffer;
  prevValue: Buffer;
  metaBuf: Buffer;
  encodeBuf: Buffer;
}

/** Opens the six databases of an environment (README.md, "Layout") and allocates the scratch buffers. */
export function openContext(root: Root, reader: boolean): Context {
  const binary = (name: string): Db<Buffer> =>
    root.openDB({ name, encoding: 'binary', keyEncoding: 'binary' }) as Db<Buffer>;
  return {
    root,
    catalog: binary('catalog'),
    meta: binary('meta'),
    records: root.openDB({ name: 'records', encoder: rawValues, keyEncoder: offsetKeys }) as Db<bigint>,
    keys: binary('keys'),
    times: binary('times'),
    pending: binary('pending'),
    closed: false,
    reader,
    running: new Set(),
    group: null,
    recKey: Buffer.alloc(12),
    idxKey: Buffer.alloc(INDEX_KEY_MAX),
    pendKey: Buffer.alloc(13),
    timeKey: Buffer.alloc(10),
    offsetValue: Buffer.alloc(8),
    prevValue: Buffer.alloc(8),
    metaBuf: Buffer.alloc(META_SIZE),
    encodeBuf: Buffer.allocUnsafeSlow(64 * 1024),
  };
}

export function checkOpen(c: Context): void {
  if (c.closed) throw new Error('cache store is closed');
}

export function checkWritable(c: Context): void {
  checkOpen(c);
  if (c.reader) throw new Error('cache store is open for reading only');
}

/** Maintenance commits chunk by chunk, which an enclosing CacheStore.transaction could not undo. */
export function checkMaintenance(c: Context): void {
  checkWritable(c);
  if (c.group !== null) throw new Error('maintenance cannot run inside CacheStore.transaction');
}

/** Counts p among the work CacheStore.close waits for. */
export function track<T>(c: Context, p: Promise<T>): Promise<T> {
  const running = c.running;
  running.add(p);
  const done = (): void => {
    running.delete(p);
  };
  p.then(done, done);
  return p;
}
