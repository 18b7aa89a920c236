// The partition store's public face: code outside this folder imports from here only.

export { CacheStore } from './store.ts';
export { PartitionStore } from './partition.ts';
export type { CacheStoreOptions, CacheStoreStats } from './store.ts';
export type { CachedHeader, CachedRecord, RecordHeaderInput, RecordInput } from './codec.ts';
export type { AppendOptions, AppendResult, PartitionStats, ReadLimits, ReadResult } from './partition.ts';
export type { CompactOptions, CompactResult } from './compaction.ts';
export type { ExpireOptions } from './expiry.ts';
export type { MaintenanceResult, RemovalListener } from './purge.ts';
