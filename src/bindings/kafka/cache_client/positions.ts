// Positions come back from clients (an ETag, a Last-Event-ID, a resume token), and a client can
// write any: partitions the topic does not have, offsets past anything it holds. Taken as given,
// such a position names partitions that are echoed in every progress after it and offsets no
// record will ever reach, so a conditional request never sees a change and a stream never
// delivers. Streams and lookups hold a position to the topic as the cache knows it.

import type { PartitionStore } from '../cache/index.ts';
import type { CachedTopic } from '../cache_server/api.ts';

/**
 * The offset just past the last record the partition holds, is known to hold upstream (the high
 * watermark) or was produced to through this cache_server: no reader can have been handed a
 * position past it.
 */
export function partitionEnd(topic: CachedTopic, partition: number, store: PartitionStore): bigint {
  let end = store.nextOffset;
  if (store.highWatermark > end) end = store.highWatermark;
  const produced = topic.producedEnd(partition);
  return produced > end ? produced : end;
}

export interface PositionCheck {
  /** Partitions the position names that the topic does not have. */
  readonly unknown: readonly number[];
  /** Ready partitions the position puts past their end. */
  readonly ahead: readonly number[];
}

/**
 * What is wrong with a position a client handed back, against the topic now. A partition that is
 * not ready yet cannot be judged here; a stream lowers an offset past its end once it is.
 */
export function checkPositions(topic: CachedTopic, progress: ReadonlyMap<number, bigint>): PositionCheck {
  const known = new Set(topic.partitions());
  const unknown: number[] = [];
  const ahead: number[] = [];
  for (const [partition, offset] of progress) {
    if (!known.has(partition)) unknown.push(partition);
    else if (topic.isReady(partition) && offset > partitionEnd(topic, partition, topic.store(partition)))
      ahead.push(partition);
  }
  return { unknown, ahead };
}

/** `progress` without the partitions the topic does not have. */
export function knownPartitions(
  topic: CachedTopic,
  progress: ReadonlyMap<number, bigint>,
): Map<number, bigint> {
  const known = new Set(topic.partitions());
  const out = new Map<number, bigint>();
  for (const [partition, offset] of progress) if (known.has(partition)) out.set(partition, offset);
  return out;
}
