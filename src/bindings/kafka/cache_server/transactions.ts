import type { RecordInput } from '../cache/index.ts';
import type { RecordBatch } from '../client/index.ts';

interface Held {
  readonly record: RecordInput & { aborted?: boolean };
  readonly producerId: bigint;
  /** Part of a transaction whose commit or abort marker has not been fetched yet. */
  pending: boolean;
}

/**
 * Turns fetched batches (read_uncommitted) into records the store can take, with the `aborted`
 * flag already decided. Brokers send the aborted-transactions list only to read_committed
 * fetches, and a stored record cannot be re-flagged, so records from the first one of a
 * transaction still open are held here until its marker arrives: the store never holds a record
 * whose fate is unknown. Until then the partition's cache ends where the broker's last stable
 * offset is, for read_uncommitted readers too.
 */
export class TransactionHold {
  #held: Held[] = [];
  readonly #open = new Set<bigint>();
  #bytes = 0;

  /** Bytes of keys and values held back. */
  get bytes(): number {
    return this.#bytes;
  }

  get empty(): boolean {
    return this.#held.length === 0;
  }

  /** Offset of the first record held back, or null. */
  get firstHeldOffset(): bigint | null {
    return this.#held[0]?.record.offset ?? null;
  }

  add(batch: RecordBatch): void {
    const producerId = batch.producerId;
    if (batch.control) {
      if (this.#open.delete(producerId)) {
        const aborted = batch.controlType === 'abort';
        for (const h of this.#held) {
          if (h.pending && h.producerId === producerId) {
            h.pending = false;
            if (aborted) h.record.aborted = true;
          }
        }
      }
    } else if (batch.transactional) {
      this.#open.add(producerId);
    }
    const pending = !batch.control && batch.transactional;
    for (const r of batch.records) {
      const record: RecordInput & { aborted?: boolean } = {
        offset: r.offset,
        timestamp: r.timestamp,
        key: r.key,
        value: r.value,
        headers: r.headers.map((h) => ({ name: h.key, value: h.value })),
        producerId,
        transactional: batch.transactional,
        control: batch.control,
      };
      this.#held.push({ record, producerId, pending });
      this.#bytes += (r.key?.length ?? 0) + (r.value?.length ?? 0);
    }
  }

  /** Takes the records up to the first one whose transaction is still open. */
  release(): RecordInput[] {
    let n = 0;
    while (n < this.#held.length && this.#held[n]?.pending === false) n++;
    if (n === 0) return [];
    const out = this.#held.slice(0, n);
    this.#held = n === this.#held.length ? [] : this.#held.slice(n);
    for (const h of out) this.#bytes -= (h.record.key?.length ?? 0) + (h.record.value?.length ?? 0);
    return out.map((h) => h.record);
  }
}

/** Records of read_committed batches: aborted ones are already gone, so nothing is held. */
export function recordsOf(batches: readonly RecordBatch[]): RecordInput[] {
  const out: RecordInput[] = [];
  for (const batch of batches) {
    for (const r of batch.records) {
      out.push({
        offset: r.offset,
        timestamp: r.timestamp,
        key: r.key,
        value: r.value,
        headers: r.headers.map((h) => ({ name: h.key, value: h.value })),
        producerId: batch.producerId,
        transactional: batch.transactional,
        control: batch.control,
      });
    }
  }
  return out;
}
