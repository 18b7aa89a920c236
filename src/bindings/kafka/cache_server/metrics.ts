import { Counter, Gauge, type Registry } from 'prom-client';
import type { CacheStore } from '../cache/index.ts';
import type { StorageErrorKind } from './storage-errors.ts';
import type { TopicLifecycleChange } from './topic.ts';

export interface CacheServerMetrics {
  expired(topic: string, partition: number, records: number, bytes: number): void;
  compacted(topic: string, partition: number, records: number, bytes: number): void;
  /** Records dropped to keep the cache within its byte budget. */
  evicted(topic: string, partition: number, records: number, bytes: number): void;
  /** Bootstrap topics alone took the cache past its budget, which eviction cannot fix. */
  budgetExceeded(): void;
  /** Ingest paused for want of disk space (true), waiting for room for `waitingForBytes`, or resumed. */
  ingestPaused(paused: boolean, waitingForBytes?: number): void;
  /** A commit of fetched records failed in the store. */
  storageError(kind: StorageErrorKind): void;
  /** A topic changed under the cache: deleted, deleted and created again, or given partitions. */
  topicChanged(topic: string, change: TopicLifecycleChange): void;
  /** A request was served without the fresh metadata it asked for: the broker did not answer in time. */
  metadataStale(): void;
  /** A produce was given up before it was sent: its client left, or its topic was deleted. */
  produceDropped(reason: 'client_gone' | 'topic_deleted'): void;
  /** A produce not sent yet went to the partition a recreated topic's own count gives. */
  produceRerouted(): void;
  /** Stops reporting this binding's partitions. */
  close(): void;
}

interface Source {
  readonly name: string;
  readonly store: CacheStore;
}

// Metrics are registered once per registry and shared by every cache_server binding in it; the
// gauges read each binding's store on scrape, so nothing is kept up to date between scrapes.
const sourcesByRegistry = new WeakMap<Registry, Set<Source>>();

function counter(registry: Registry, name: string, help: string): Counter<'binding' | 'topic' | 'partition'> {
  const existing = registry.getSingleMetric(name);
  if (existing !== undefined) return existing as Counter<'binding' | 'topic' | 'partition'>;
  return new Counter({ name, help, labelNames: ['binding', 'topic', 'partition'], registers: [registry] });
}

export function createCacheServerMetrics(
  registry: Registry,
  name: string,
  store: CacheStore,
): CacheServerMetrics {
  let sources = sourcesByRegistry.get(registry);
  if (sources === undefined) {
    const set = new Set<Source>();
    sources = set;
    sourcesByRegistry.set(registry, set);
    const perPartition = (metric: string, help: string, value: 'bytes' | 'records'): void => {
      if (registry.getSingleMetric(metric) !== undefined) return;
      new Gauge({
        name: metric,
        help,
        labelNames: ['binding', 'topic', 'partition'],
        registers: [registry],
        collect() {
          this.reset();
          for (const source of set) {
            let partitions: Array<{ topic: string; partition: number }>;
            try {
              partitions = source.store.partitions();
            } catch {
              continue; // closed
            }
            for (const { topic, partition } of partitions) {
              const stats = source.store.partition(topic, partition).stats();
              this.set({ binding: source.name, topic, partition: String(partition) }, stats[value]);
            }
          }
        },
      });
    };
    perPartition('kgate_cache_partition_bytes', 'Encoded record bytes cached per topic partition', 'bytes');
    perPartition('kgate_cache_partition_messages', 'Records cached per topic partition', 'records');
  }
  const source: Source = { name, store };
  sources.add(source);
  const expiredRecords = counter(
    registry,
    'kgate_cache_expired_records_total',
    'Records removed from the cache by retention (time, size, or the broker moving its log start)',
  );
  const expiredBytes = counter(
    registry,
    'kgate_cache_expired_bytes_total',
    'Encoded bytes removed by retention',
  );
  const compactedRecords = counter(
    registry,
    'kgate_cache_compacted_records_total',
    'Records removed from the cache by compaction',
  );
  const compactedBytes = counter(
    registry,
    'kgate_cache_compacted_bytes_total',
    'Encoded bytes removed by compaction',
  );
  const evictedRecords = counter(
    registry,
    'kgate_cache_evicted_records_total',
    'Records removed from the cache to keep it within its byte budget',
  );
  const evictedBytes = counter(
    registry,
    'kgate_cache_evicted_bytes_total',
    'Encoded bytes removed to keep the cache within its byte budget',
  );
  const budgetExceeded =
    (registry.getSingleMetric('kgate_cache_budget_exceeded_total') as Counter<'binding'> | undefined) ??
    new Counter({
      name: 'kgate_cache_budget_exceeded_total',
      help: 'Times bootstrap topics alone took the cache past its byte budget',
      labelNames: ['binding'],
      registers: [registry],
    });
  const ingestPaused =
    (registry.getSingleMetric('kgate_cache_ingest_paused') as Gauge<'binding'> | undefined) ??
    new Gauge({
      name: 'kgate_cache_ingest_paused',
      help: '1 while ingest from Kafka is paused because the disk is full; cached records are still served',
      labelNames: ['binding'],
      registers: [registry],
    });
  ingestPaused.set({ binding: name }, 0);
  const ingestWaiting =
    (registry.getSingleMetric('kgate_cache_ingest_waiting_bytes') as Gauge<'binding'> | undefined) ??
    new Gauge({
      name: 'kgate_cache_ingest_waiting_bytes',
      help: 'Bytes a paused ingest waits to be able to write (room for one commit) before it resumes; 0 while it runs',
      labelNames: ['binding'],
      registers: [registry],
    });
  ingestWaiting.set({ binding: name }, 0);
  const storageErrors =
    (registry.getSingleMetric('kgate_cache_storage_errors_total') as
      Counter<'binding' | 'kind'> | undefined) ??
    new Counter({
      name: 'kgate_cache_storage_errors_total',
      help: 'Commits of fetched records the store failed, by kind: no_space (ingest pauses) or other',
      labelNames: ['binding', 'kind'],
      registers: [registry],
    });
  const topicChanges =
    (registry.getSingleMetric('kgate_cache_topic_changes_total') as
      Counter<'binding' | 'topic' | 'change'> | undefined) ??
    new Counter({
      name: 'kgate_cache_topic_changes_total',
      help: 'Topics that changed under the cache, by change: deleted (its cache dropped), recreated (deleted and created again: the old cache dropped), partitions_added',
      labelNames: ['binding', 'topic', 'change'],
      registers: [registry],
    });
  const metadataStale =
    (registry.getSingleMetric('kgate_cache_metadata_stale_total') as Counter<'binding'> | undefined) ??
    new Counter({
      name: 'kgate_cache_metadata_stale_total',
      help: "Requests served from what the cache knew of their topic because the broker did not answer the metadata request within the cache_server's metadata.waitMs",
      labelNames: ['binding'],
      registers: [registry],
    });
  const produceDropped =
    (registry.getSingleMetric('kgate_cache_produce_dropped_total') as
      Counter<'binding' | 'reason'> | undefined) ??
    new Counter({
      name: 'kgate_cache_produce_dropped_total',
      help: 'Produce calls given up before they were sent, so never written, by reason: client_gone (the HTTP client left) or topic_deleted',
      labelNames: ['binding', 'reason'],
      registers: [registry],
    });
  const produceRerouted =
    (registry.getSingleMetric('kgate_cache_produce_rerouted_total') as Counter<'binding'> | undefined) ??
    new Counter({
      name: 'kgate_cache_produce_rerouted_total',
      help: "Produce calls not sent yet when their topic was deleted and created again, sent to the partition the new topic's count gives",
      labelNames: ['binding'],
      registers: [registry],
    });
  const set = sources;
  return {
    expired(topic, partition, records, bytes) {
      const labels = { binding: name, topic, partition: String(partition) };
      if (records > 0) expiredRecords.inc(labels, records);
      if (bytes > 0) expiredBytes.inc(labels, bytes);
    },
    compacted(topic, partition, records, bytes) {
      const labels = { binding: name, topic, partition: String(partition) };
      if (records > 0) compactedRecords.inc(labels, records);
      if (bytes > 0) compactedBytes.inc(labels, bytes);
    },
    evicted(topic, partition, records, bytes) {
      const labels = { binding: name, topic, partition: String(partition) };
      if (records > 0) evictedRecords.inc(labels, records);
      if (bytes > 0) evictedBytes.inc(labels, bytes);
    },
    budgetExceeded() {
      budgetExceeded.inc({ binding: name });
    },
    ingestPaused(paused, waitingForBytes = 0) {
      ingestPaused.set({ binding: name }, paused ? 1 : 0);
      ingestWaiting.set({ binding: name }, paused ? waitingForBytes : 0);
    },
    storageError(kind) {
      storageErrors.inc({ binding: name, kind });
    },
    topicChanged(topic, change) {
      topicChanges.inc({ binding: name, topic, change });
    },
    metadataStale() {
      metadataStale.inc({ binding: name });
    },
    produceDropped(reason) {
      produceDropped.inc({ binding: name, reason });
    },
    produceRerouted() {
      produceRerouted.inc({ binding: name });
    },
    close() {
      set.delete(source);
      ingestPaused.remove({ binding: name });
      ingestWaiting.remove({ binding: name });
    },
  };
}
