// The in-memory state of one partition that its reads, writes and maintenance share: the key range
// that holds it (a reset moves it to a fresh pid) and the metadata of its last commit.

import type { Context } from './context.ts';
import type { Meta } from './meta.ts';

/**
 * The pid of a partition the catalog does not name: dropped (its topic or the partition itself is
 * gone from the cluster), or, in a reader, not created by the writer yet. No pid is ever 0, so its
 * key range is empty; the next write gives the partition a pid again.
 */
export const NO_PID = 0;

export class PartitionState {
  readonly ctx: Context;
  readonly topic: string;
  readonly partition: number;
  /** NO_PID while the catalog does not name the partition. */
  pid: number;
  meta: Meta;
  /** The purge of this partition running now, if any: purges take turns (see purgeBelow). */
  purging: Promise<unknown> | undefined;

  constructor(ctx: Context, topic: string, partition: number, pid: number, meta: Meta) {
    this.ctx = ctx;
    this.topic = topic;
    this.partition = partition;
    this.pid = pid;
    this.meta = meta;
  }

  /** Takes the state a write transaction just committed. */
  commit(meta: Meta, pid = this.pid): void {
    const before = this.meta;
    const beforePid = this.pid;
    this.meta = meta;
    this.pid = pid;
    // Inside CacheStore.transaction the write was a child transaction that the outer one may still
    // roll back, taking this state change with it.
    this.ctx.group?.push(() => {
      this.meta = before;
      this.pid = beforePid;
    });
  }
}
