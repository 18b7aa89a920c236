import { Counter, Gauge, type Registry } from 'prom-client';
import { perRegistry } from '../../telemetry/per-registry.ts';
import type { Replaced } from './content-types.ts';

/** A bound of the binding a fetch was refused at. */
export type FetchLimit = 'snapshot-reads' | 'waits';

/** How a fetch from a cache missing evicted records was answered: a partial list, or no answer. */
export type PartialStatus = 203 | 507;

/**
 * What one `http-kafka proxy` binding counts. The metrics are created once per registry and
 * shared by every http-kafka proxy in it; the `binding` label tells them apart.
 */
export interface HttpKafkaMetrics {
  /** A stored content type was answered as `application/octet-stream` instead. */
  contentTypeReplaced(reason: Replaced): void;
  /** A reply could not be passed on (its `:status` is not a final status) and was answered 502. */
  invalidReply(): void;
  /** A topic read for a fetch answer began; the returned function ends it, once. */
  readStarted(): () => void;
  /** A fetch was answered from a read it did not start. */
  shared(): void;
  /** A fetch began holding a `Prefer: wait`; the returned function ends it, once. */
  waitStarted(): () => void;
  /** A fetch was refused (503) at `limit`. */
  limited(limit: FetchLimit): void;
  /** A fetch was answered from a cache missing evicted records (203 partial, or 507 unknown). */
  partialAnswer(status: PartialStatus): void;
}

interface Shared {
  readonly replaced: Counter<'binding' | 'reason'>;
  readonly invalidReplies: Counter<'binding'>;
  readonly reading: Gauge<'binding'>;
  readonly reads: Counter<'binding'>;
  readonly shared: Counter<'binding'>;
  readonly waits: Gauge<'binding'>;
  readonly limited: Counter<'binding' | 'limit'>;
  readonly partial: Counter<'binding' | 'status'>;
}

const shared = perRegistry((registers): Shared => ({
  replaced: new Counter({
    name: 'kgate_http_kafka_content_types_replaced_total',
    help: 'Stored content types http-kafka proxy bindings answered as application/octet-stream: malformed (invalid) or not on the route list (not_allowed)',
    labelNames: ['binding', 'reason'],
    registers,
  }),
  invalidReplies: new Counter({
    name: 'kgate_http_kafka_invalid_replies_total',
    help: 'Replies http-kafka proxy bindings answered 502 because their :status was not a final HTTP status',
    labelNames: ['binding'],
    registers,
  }),
  reading: new Gauge({
    name: 'kgate_http_kafka_snapshot_reads',
    help: 'Topic reads for fetch answers (merged documents, latest messages) in progress',
    labelNames: ['binding'],
    registers,
  }),
  reads: new Counter({
    name: 'kgate_http_kafka_snapshot_reads_total',
    help: 'Topic reads for fetch answers started',
    labelNames: ['binding'],
    registers,
  }),
  shared: new Counter({
    name: 'kgate_http_kafka_snapshots_shared_total',
    help: 'Fetch answers served from a topic read another request started',
    labelNames: ['binding'],
    registers,
  }),
  waits: new Gauge({
    name: 'kgate_http_kafka_waits',
    help: 'Fetch requests holding a Prefer: wait',
    labelNames: ['binding'],
    registers,
  }),
  limited: new Counter({
    name: 'kgate_http_kafka_limited_total',
    help: 'Fetch requests refused with 503 at a bound of the binding, by bound',
    labelNames: ['binding', 'limit'],
    registers,
  }),
  partial: new Counter({
    name: 'kgate_http_kafka_partial_answers_total',
    help: 'Fetches answered from a cache whose byte budget evicted records Kafka may still hold: 203 (a partial merged list) or 507 (no match, so no answer)',
    labelNames: ['binding', 'status'],
    registers,
  }),
}));

function once(end: () => void): () => void {
  let open = true;
  return () => {
    if (!open) return;
    open = false;
    end();
  };
}

export function httpKafkaMetrics(registry: Registry, binding: string): HttpKafkaMetrics {
  const m = shared(registry);
  const replaced = {
    invalid: m.replaced.labels(binding, 'invalid'),
    not_allowed: m.replaced.labels(binding, 'not_allowed'),
  };
  const invalidReplies = m.invalidReplies.labels(binding);
  const reading = m.reading.labels(binding);
  const reads = m.reads.labels(binding);
  const sharedAnswers = m.shared.labels(binding);
  const waits = m.waits.labels(binding);
  replaced.invalid.inc(0);
  replaced.not_allowed.inc(0);
  invalidReplies.inc(0);
  reading.inc(0);
  reads.inc(0);
  sharedAnswers.inc(0);
  waits.inc(0);
  for (const limit of ['snapshot-reads', 'waits'] as const) m.limited.inc({ binding, limit }, 0);
  const partial = { 203: m.partial.labels(binding, '203'), 507: m.partial.labels(binding, '507') };
  partial[203].inc(0);
  partial[507].inc(0);
  return {
    contentTypeReplaced: (reason) => replaced[reason].inc(),
    invalidReply: () => invalidReplies.inc(),
    readStarted() {
      reads.inc();
      reading.inc();
      return once(() => reading.dec());
    },
    shared: () => sharedAnswers.inc(),
    waitStarted() {
      waits.inc();
      return once(() => waits.dec());
    },
    limited: (limit) => m.limited.inc({ binding, limit }),
    partialAnswer: (status) => partial[status].inc(),
  };
}
