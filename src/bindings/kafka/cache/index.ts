export { CacheStore, PartitionStore } from './store.ts';
export type {
  AppendOptions,
  AppendResult,
  CacheStoreOptions,
  CacheStoreStats,
  CachedHeader,
  CachedRecord,
  CompactOptions,
  CompactResult,
  ExpireOptions,
  MaintenanceResult,
  PartitionStats,
  ReadLimits,
  ReadResult,
  RecordHeaderInput,
  RecordInput,
  RemovalListener,
} from './store.ts';
