import type { Condition, Filter } from '../kafka/cache_client/index.ts';

/** A request whose filters select at most one record per partition: the newest with this key. */
export interface PinnedKey {
  readonly key: Buffer;
  /** The filter's other conditions (headers), which that record must also meet. */
  readonly conditions: readonly Condition[];
}

/**
 * The exact key a fetch's filters pin, when they are one filter of a key condition ANDed with
 * header conditions; undefined for anything a key-index lookup cannot answer alone (no key,
 * several filters ORed, other kinds of condition, contradictory keys).
 */
export function pinnedKey(filters: readonly Filter[] | undefined): PinnedKey | undefined {
  const [filter] = filters ?? [];
  if (filter === undefined || filters?.length !== 1) return undefined;
  let key: Buffer | undefined;
  const conditions: Condition[] = [];
  for (const condition of filter) {
    if ('key' in condition) {
      if (condition.key === null || (key !== undefined && !key.equals(condition.key))) return undefined;
      key = condition.key;
    } else if ('header' in condition) conditions.push(condition);
    else return undefined;
  }
  return key === undefined ? undefined : { key, conditions };
}
