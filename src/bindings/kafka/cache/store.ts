// The CacheStore: one LMDB environment holding every partition a cache_server binding caches. It
// opens and closes the environment, hands out PartitionStores, and groups their writes into one
// commit. The modules it is made of are listed in ./README.md.

import { open } from 'lmdb';

import {
  FORMAT_VERSION,
  allocatePid,
  assignPid,
  listPartitions,
  partitionPid,
  removeProbe,
  storedFormat,
  writeFormat,
  writeProbe,
} from './catalog.ts';
import { TXN_FLAGS, checkOpen, checkWritable, openContext, type Context, type Root } from './context.ts';
import { freshMeta, getMeta, putMeta, type Meta } from './meta.ts';
import { PartitionStore } from './partition.ts';
import { reclaim } from './reset.ts';

export interface CacheStoreOptions {
  /** Initial LMDB map size in bytes; lmdb-js grows it when full. Default 1 GiB. */
  mapSize?: number;
  /**
   * When a commit reaches the disk. Every mode survives a killed process with nothing committed
   * lost, since committed pages are in the OS page cache.
   * - 'sync' (default): each commit fsyncs before returning; an OS crash loses nothing.
   * - 'overlapped': lmdb-js's overlappingSync, the fsync runs on another thread after the commit
   *   returns; an OS crash falls back to the last flushed commit, still consistent. On this
   *   project's reference machine it measured slower than 'sync' for batches of random keys
   *   (docs/dependencies.md), so it is not the default.
   * - 'none': no fsync (LMDB's noSync); an OS crash may corrupt the file, which then has to be
   *   deleted and refetched. For tests and throwaway caches.
   */
  durability?: 'sync' | 'overlapped' | 'none';
  /**
   * Opens an environment another thread of this process writes, for reading only: nothing is
   * created or written, and partition metadata is re-read on `refresh()` rather than kept current
   * by this store's own writes. The writer must have opened the directory first.
   */
  reader?: boolean;
}

export interface CacheStoreStats {
  partitions: number;
  records: number;
  bytes: number;
  /** Bytes of the LMDB file in use (last page × page size), free pages included. */
  fileBytes: number;
}

/**
 * One LMDB environment under a directory, holding every partition a cache_server binding caches.
 * One process owns a directory at a time: partition metadata is kept in memory between writes.
 * Other threads of that process may open it with `reader` to read what the writing thread commits.
 */
export class CacheStore {
  readonly path: string;
  #ctx: Context;
  #partitions = new Map<string, PartitionStore>();
  #writeFailure: Error | undefined;

  private constructor(path: string, ctx: Context) {
    this.path = path;
    this.#ctx = ctx;
  }

  static open(path: string, options: CacheStoreOptions = {}): CacheStore {
    const durability = options.durability ?? 'sync';
    const reader = options.reader === true;
    const root = open({
      path,
      maxDbs: 8,
      encoding: 'binary',
      mapSize: options.mapSize ?? 1024 * 1024 * 1024,
      overlappingSync: durability === 'overlapped',
      noSync: durability === 'none',
    }) as unknown as Root;
    const ctx = openContext(root, reader);
    const format = storedFormat(ctx);
    if (format === undefined && reader) {
      void root.close();
      throw new Error(`cache store ${path} has not been created by its writer yet`);
    }
    if (format === undefined) {
      root.transactionSync(() => writeFormat(ctx), TXN_FLAGS);
    } else if (format !== FORMAT_VERSION) {
      void root.close();
      throw new Error(`cache store ${path} has format ${format}, this build reads ${FORMAT_VERSION}`);
    }
    return new CacheStore(path, ctx);
  }

  /** The store of one topic partition, created empty on first use. */
  partition(topic: string, partition: number): PartitionStore {
    const name = `${topic}/${partition}`;
    const known = this.#partitions.get(name);
    if (known !== undefined) return known;
    const c = this.#ctx;
    checkOpen(c);
    const assigned = partitionPid(c, topic, partition);
    let pid = assigned ?? 0;
    let meta: Meta | undefined = assigned === undefined ? undefined : getMeta(c, assigned);
    if (meta === undefined && c.reader) {
      // Not fed yet: an empty view until reload() finds what the writer created.
      const empty = new PartitionStore(c, topic, partition, 0, freshMeta(''));
      this.#partitions.set(name, empty);
      return empty;
    }
    if (meta === undefined) {
      const fresh = freshMeta('');
      c.root.transactionSync(() => {
        if (pid === 0) {
          pid = allocatePid(c);
          assignPid(c, topic, partition, pid);
        }
        putMeta(c, pid, fresh);
      }, TXN_FLAGS);
      meta = fresh;
    }
    const p = new PartitionStore(c, topic, partition, pid, meta);
    this.#partitions.set(name, p);
    return p;
  }

  /** Every topic partition the store has metadata for. */
  partitions(): Array<{ topic: string; partition: number }> {
    return listPartitions(this.#ctx);
  }

  /**
   * Runs fn's appends, setWatermarks and bindTopicId calls, on any partitions, in one LMDB
   * transaction: one commit for a whole fetch response instead of one per partition batch. Each
   * call inside stays atomic on its own (a child transaction); if fn throws, nothing of it is
   * stored. fn must be synchronous, and maintenance cannot run inside.
   */
  transaction<T>(fn: () => T): T {
    const c = this.#ctx;
    checkWritable(c);
    if (c.group !== null) return fn();
    const undo: Array<() => void> = [];
    c.group = undo;
    try {
      return c.root.transactionSync(() => {
        const result = fn();
        if (result instanceof Promise) throw new Error('CacheStore.transaction needs a synchronous function');
        // Thrown inside, so that LMDB aborts the transaction as it does a commit that fails.
        if (this.#writeFailure !== undefined) throw this.#writeFailure;
        return result;
      }, TXN_FLAGS);
    } catch (error) {
      for (const restore of undo.reverse()) restore();
      throw error;
    } finally {
      c.group = null;
    }
  }

  /**
   * Learns whether the environment takes writes again after one failed for want of space. With
   * `bytes` 0, commits a write that changes nothing (a key put and removed). Else commits `bytes`
   * under a key of the catalog and removes them in a second commit: the first needs as much room
   * as a commit of records that size, whether the room is free pages of the file or free space on
   * its filesystem, and the second gives it back to later commits. Throws what a commit throws.
   */
  probeWrite(bytes = 0): void {
    const c = this.#ctx;
    checkOpen(c);
    c.root.transactionSync(() => {
      writeProbe(c, bytes);
      if (this.#writeFailure !== undefined) throw this.#writeFailure;
    }, TXN_FLAGS);
    if (bytes > 0) c.root.transactionSync(() => removeProbe(c), TXN_FLAGS);
  }

  /**
   * A seam for tests where no small filesystem can be mounted: while an error is set, every
   * `transaction()` and `probeWrite()` fails with it instead of committing, as a full disk would
   * fail them. Maintenance and single-partition writes are not affected. `undefined` clears it.
   */
  simulateWriteFailure(error: Error | undefined): void {
    this.#writeFailure = error;
  }

  /** Deletes the data left by reset partitions, a chunk per transaction; returns the entries removed. */
  reclaim(): Promise<number> {
    return reclaim(this.#ctx);
  }

  stats(): CacheStoreStats {
    let records = 0;
    let bytes = 0;
    let partitions = 0;
    for (const { topic, partition } of this.partitions()) {
      const s = this.partition(topic, partition).stats();
      records += s.records;
      bytes += s.bytes;
      partitions++;
    }
    const env = this.#ctx.root.getStats() as { lastPageNumber?: number; pageSize?: number };
    const fileBytes = ((env.lastPageNumber ?? 0) + 1) * (env.pageSize ?? 4096);
    return { partitions, records, bytes, fileBytes };
  }

  /**
   * Ends the read snapshot this thread holds, so that reads and `PartitionStore.reload()` after
   * it see every commit the writing thread has made.
   */
  refresh(): void {
    if (this.#ctx.closed) return;
    this.#ctx.root.resetReadTxn();
  }

  /** Stops maintenance at its next chunk boundary, waits for it, and closes the environment. */
  async close(): Promise<void> {
    const c = this.#ctx;
    if (c.closed) return;
    c.closed = true;
    await Promise.allSettled([...c.running]);
    await c.root.close();
  }
}
