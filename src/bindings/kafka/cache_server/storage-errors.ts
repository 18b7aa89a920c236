import { statfsSync } from 'node:fs';

/** A failed store write: `no_space` pauses ingest until space returns; `other` is retried as before. */
export type StorageErrorKind = 'no_space' | 'other';

// errno values as LMDB reports them (a number in `code`) and as Node names them.
const ENOSPC = 28;
const EDQUOT = 122;
const EIO = 5;
// LMDB's own codes lie in this range. lmdb-js grows the map when it fills, so MDB_MAP_FULL only
// arrives when growing failed; waiting for room and probing is the answer to that as well.
const MDB_FIRST = -30800;
const MDB_LAST = -30700;
const MDB_MAP_FULL = -30792;

function codeOf(error: unknown): number | string | undefined {
  if (!(error instanceof Error) || error.name === 'AbortError') return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'number' || typeof code === 'string' ? code : undefined;
}

/** True for the codes a storage layer fails with: errno values (by number or name) and LMDB's. */
function isStorageCode(code: number | string): boolean {
  if (typeof code === 'string') return /^E[A-Z]+$/.test(code);
  return (code > 0 && code < 4096) || (code > MDB_FIRST && code < MDB_LAST);
}

/** Bytes free for unprivileged writers on the filesystem holding path; Infinity when unknown. */
export function freeBytes(path: string): number {
  try {
    const s = statfsSync(path);
    return s.bavail * s.bsize;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

/**
 * What kind of storage failure an error thrown by a store write is, or undefined when it is none
 * (a closed store, a bad record). LMDB reports a full disk as ENOSPC when a write fails outright
 * but as EIO when it is short (the disk filled midway), so EIO counts as no space when the
 * filesystem under the store has less than `headroom` bytes free, and as another error when not.
 */
export function storageErrorKind(
  error: unknown,
  path: string,
  headroom: number,
): StorageErrorKind | undefined {
  const code = codeOf(error);
  if (code === undefined || !isStorageCode(code)) return undefined;
  if (code === ENOSPC || code === 'ENOSPC' || code === EDQUOT || code === 'EDQUOT' || code === MDB_MAP_FULL)
    return 'no_space';
  if ((code === EIO || code === 'EIO') && freeBytes(path) < headroom) return 'no_space';
  return 'other';
}
