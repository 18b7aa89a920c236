// A broker for the produce path's unit tests: it keeps each partition's log and applies Kafka's
// checks of idempotent producers (epoch, sequence, duplicates of the last five batches) to every
// Produce request, answering a connection's requests in order, as a broker does. Tests make it
// misbehave the ways real ones do: refuse connections, drop a connection after appending, answer
// an error before appending, or forget a producer's last batch.
import { Api, type ApiSpec } from '../../src/bindings/kafka/client/apis/index.ts';
import type {
  ProducePartitionResponse,
  ProduceRequest,
} from '../../src/bindings/kafka/client/apis/produce.ts';
import type { BrokerConnection, RequestOptions } from '../../src/bindings/kafka/client/connection.ts';
import { ConnectionError } from '../../src/bindings/kafka/client/errors.ts';
import { decodeBatches } from '../../src/bindings/kafka/client/protocol/records.ts';

interface ProducerEntry {
  epoch: number;
  lastSequence: number;
  /** The last five batches: first and last sequence, and where they were written. */
  readonly batches: { first: number; last: number; offset: bigint }[];
}

/** One batch as the broker received it, for the tests' checks. */
export interface Received {
  readonly partition: number;
  readonly producerId: bigint;
  readonly epoch: number;
  readonly baseSequence: number;
  readonly values: readonly string[];
  /** The error code answered (0 for written or a duplicate). */
  code: number;
  readonly connection: number;
}

/** What the next Produce request meets, when a test says so. */
export type Fault =
  /** Appends, then the connection dies before the answer. */
  | { readonly kind: 'drop-after-append' }
  /** The connection dies with the request unread. */
  | { readonly kind: 'drop-before-append' }
  /** Answers `code` for every partition without appending. */
  | { readonly kind: 'refuse'; readonly code: number }
  /** Never answers; the connection stays open. */
  | { readonly kind: 'hang' };

export class FakeIdempotentBroker {
  readonly logs = new Map<number, string[]>();
  readonly received: Received[] = [];
  readonly #producers = new Map<number, Map<bigint, ProducerEntry>>();
  /** What the next Produce requests meet, in order; undefined for a normal answer. */
  readonly faults: (Fault | undefined)[] = [];
  /** While set, new connections are refused. */
  down = false;
  /** Answers take this long (ms). */
  latencyMs = 1;
  nextProducerId = 1000n;
  #connections = 0;
  #current: FakeConnection | undefined;
  /** Produce requests written and not answered, by partition: the most seen at once. */
  readonly maxInFlight = new Map<number, number>();
  readonly #inFlight = new Map<number, number>();

  /** The open connection, or a new one; rejects while the broker is down. */
  connect(): Promise<BrokerConnection> {
    if (this.down) return Promise.reject(new ConnectionError('connection to fake:9092 failed: ECONNREFUSED'));
    if (this.#current === undefined || this.#current.closed)
      this.#current = new FakeConnection(this, ++this.#connections);
    return Promise.resolve(this.#current as unknown as BrokerConnection);
  }

  /** Closes the open connection, failing what it carries. */
  dropConnection(): void {
    this.#current?.fail(new ConnectionError('connection to fake:9092 closed'));
  }

  log(partition: number): string[] {
    return this.logs.get(partition) ?? [];
  }

  /** Forgets the last batch of every producer of `partition`, as an unclean leader election can. */
  truncateLastBatch(partition: number): void {
    const log = this.logs.get(partition) ?? [];
    for (const entry of this.#producers.get(partition)?.values() ?? []) {
      const last = entry.batches.pop();
      if (last === undefined) continue;
      log.splice(Number(last.offset));
      entry.lastSequence = last.first - 1;
    }
  }

  /** Forgets every producer of `partition` (retention removed their batches). */
  forgetProducers(partition: number): void {
    this.#producers.get(partition)?.clear();
  }

  started(partition: number): void {
    const n = (this.#inFlight.get(partition) ?? 0) + 1;
    this.#inFlight.set(partition, n);
    this.maxInFlight.set(partition, Math.max(this.maxInFlight.get(partition) ?? 0, n));
  }

  finished(partition: number): void {
    this.#inFlight.set(partition, (this.#inFlight.get(partition) ?? 1) - 1);
  }

  /** Appends one partition's batch the way a broker checks an idempotent producer's. */
  append(partition: number, batchBytes: Buffer, connection: number): ProducePartitionResponse {
    const [batch] = decodeBatches(batchBytes, 0n);
    if (batch === undefined) throw new Error('a Produce request without a record batch');
    const values = batch.records.map((r) => r.value?.toString() ?? '');
    const received: Received = {
      partition,
      producerId: batch.producerId,
      epoch: batch.producerEpoch,
      baseSequence: batch.baseSequence,
      values,
      code: 0,
      connection,
    };
    this.received.push(received);
    const log = this.logs.get(partition) ?? [];
    this.logs.set(partition, log);
    const answer = (code: number, baseOffset = -1n): ProducePartitionResponse => {
      received.code = code;
      return {
        topic: '',
        partition,
        errorCode: code,
        baseOffset,
        logAppendTimeMs: -1n,
        logStartOffset: 0n,
        errorMessage: null,
        recordErrors: [],
      };
    };
    if (batch.producerId >= 0n) {
      const producers = this.#producers.get(partition) ?? new Map<bigint, ProducerEntry>();
      this.#producers.set(partition, producers);
      const entry = producers.get(batch.producerId);
      const first = batch.baseSequence;
      const last = first + values.length - 1;
      if (entry !== undefined && batch.producerEpoch < entry.epoch) return answer(47);
      if (entry !== undefined && batch.producerEpoch === entry.epoch) {
        const duplicate = entry.batches.find((b) => b.first === first && b.last === last);
        if (duplicate !== undefined) return answer(0, duplicate.offset);
        if (first !== entry.lastSequence + 1) return answer(45);
      } else if (entry !== undefined && first !== 0) return answer(45);
      const offset = BigInt(log.length);
      log.push(...values);
      const batches = entry?.epoch === batch.producerEpoch ? entry.batches : [];
      batches.push({ first, last, offset });
      if (batches.length > 5) batches.shift();
      producers.set(batch.producerId, { epoch: batch.producerEpoch, lastSequence: last, batches });
      return answer(0, offset);
    }
    const offset = BigInt(log.length);
    log.push(...values);
    return answer(0, offset);
  }
}

/** The fake's side of one connection; answers in the order requests were written. */
class FakeConnection {
  readonly address = 'fake:9092';
  readonly #broker: FakeIdempotentBroker;
  readonly #id: number;
  readonly #pending = new Set<(error: Error) => void>();
  #chain: Promise<void> = Promise.resolve();
  closed = false;

  constructor(broker: FakeIdempotentBroker, id: number) {
    this.#broker = broker;
    this.#id = id;
  }

  fail(error: Error): void {
    if (this.closed) return;
    this.closed = true;
    for (const reject of [...this.#pending]) reject(error);
    this.#pending.clear();
  }

  request(spec: ApiSpec, request: ProduceRequest, options?: RequestOptions): Promise<unknown> {
    if (spec !== Api.Produce)
      return Promise.reject(new Error(`the fake broker only takes Produce, not ${spec.name}`));
    if (this.closed) return Promise.reject(new ConnectionError('connection to fake:9092 closed'));
    options?.onWritten?.();
    const broker = this.#broker;
    const fault = broker.faults.shift();
    const partitions = request.topics.flatMap((t) => t.partitions.map((p) => ({ topic: t.topic, ...p })));
    for (const p of partitions) broker.started(p.partition);
    return new Promise((resolve, reject) => {
      let settled = false;
      const finish = (): void => {
        if (settled) return;
        settled = true;
        this.#pending.delete(onClose);
        for (const p of partitions) broker.finished(p.partition);
      };
      const onClose = (error: Error): void => {
        finish();
        reject(error);
      };
      this.#pending.add(onClose);
      this.#chain = this.#chain.then(async () => {
        await new Promise((done) => setTimeout(done, broker.latencyMs));
        if (settled) return;
        // A broker answers a connection's requests in order: nothing behind this one is answered.
        if (fault?.kind === 'hang') await new Promise(() => undefined);
        if (fault?.kind === 'drop-before-append') {
          this.fail(new ConnectionError('connection to fake:9092 closed'));
          return;
        }
        if (fault?.kind === 'refuse') {
          const answers = partitions.map((p) => {
            const [batch] = decodeBatches(p.batch, 0n);
            broker.received.push({
              partition: p.partition,
              producerId: batch?.producerId ?? -1n,
              epoch: batch?.producerEpoch ?? -1,
              baseSequence: batch?.baseSequence ?? -1,
              values: batch?.records.map((r) => r.value?.toString() ?? '') ?? [],
              code: fault.code,
              connection: this.#id,
            });
            return {
              topic: p.topic,
              partition: p.partition,
              errorCode: fault.code,
              baseOffset: -1n,
              logAppendTimeMs: -1n,
              logStartOffset: 0n,
              errorMessage: null,
              recordErrors: [],
            };
          });
          finish();
          resolve(answers);
          return;
        }
        const answers = partitions.map((p) => ({
          ...broker.append(p.partition, p.batch, this.#id),
          topic: p.topic,
        }));
        if (fault?.kind === 'drop-after-append') {
          this.fail(new ConnectionError('connection to fake:9092 closed'));
          return;
        }
        finish();
        resolve(request.acks === 0 ? undefined : answers);
      });
    });
  }
}
