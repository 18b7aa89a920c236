import { Admin, type ClusterMetadata } from '@platformatic/kafka';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TopicSpec } from './types.ts';

/**
 * Each operation gets a fresh short-lived Admin: brokers come and go in these clusters (restarts,
 * stopped leaders), and a new client never carries a stale connection or metadata across that.
 */
async function withAdmin<T>(bootstrap: readonly string[], use: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = new Admin({
    clientId: 'kgate-embedded-kafka',
    bootstrapBrokers: [...bootstrap],
    connectTimeout: 2000,
    requestTimeout: 10_000,
    retries: 0,
  });
  try {
    return await use(admin);
  } finally {
    await admin.close().catch(() => undefined);
  }
}

function metadata(bootstrap: string, topics: readonly string[]): Promise<ClusterMetadata> {
  return withAdmin([bootstrap], (admin) => admin.metadata({ topics: [...topics], forceUpdate: true }));
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const nested = (error as Error & { errors?: unknown[] }).errors;
  const inner = Array.isArray(nested) && nested.length > 0 ? ` (${nested.map(describe).join('; ')})` : '';
  return `${error.message}${inner}`;
}

export interface PollOptions {
  readonly timeoutMs: number;
  readonly what: string;
  /** Fails the wait early (e.g. a broker process died); returns a reason or undefined. */
  readonly abort?: () => Promise<string | undefined>;
  readonly intervalMs?: number;
}

/** Retries `attempt` until it returns true, the deadline passes or `abort` has a reason. */
export async function poll(attempt: () => Promise<boolean>, options: PollOptions): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  let last = 'no attempt finished';
  for (;;) {
    const reason = await options.abort?.();
    if (reason !== undefined) throw new Error(`${options.what}: ${reason}`);
    try {
      if (await attempt()) return;
      last = 'condition not met yet';
    } catch (error) {
      last = describe(error);
    }
    if (Date.now() >= deadline) {
      throw new Error(`${options.what}: timed out after ${options.timeoutMs} ms (last: ${last})`);
    }
    await sleep(options.intervalMs ?? 200);
  }
}

/**
 * Asks every given broker for metadata until each of them answers and lists all `expectedIds` as
 * live brokers: only then does a client bootstrapping from any of them see the whole cluster.
 */
export function waitForBrokers(
  bootstraps: readonly string[],
  expectedIds: readonly number[],
  options: PollOptions,
): Promise<void> {
  return poll(async () => {
    for (const bootstrap of bootstraps) {
      const { brokers } = await metadata(bootstrap, []);
      if (!expectedIds.every((id) => brokers.has(id))) return false;
    }
    return true;
  }, options);
}

export async function createTopic(
  bootstraps: readonly string[],
  name: string,
  spec: TopicSpec,
  timeoutMs: number,
): Promise<void> {
  await withAdmin(bootstraps, (admin) =>
    admin.createTopics({
      topics: [name],
      partitions: spec.partitions ?? 1,
      // -1 lets the broker apply default.replication.factor (1 or 3 depending on the cluster).
      replicas: spec.replicationFactor ?? -1,
      configs: Object.entries(spec.configs ?? {}).map(([configName, value]) => ({ name: configName, value })),
    }),
  );
  const partitions = spec.partitions ?? 1;
  // Every broker must know a leader for every partition, or the first produce may hit one
  // that has not caught up with the controller yet.
  await poll(
    async () => {
      for (const bootstrap of bootstraps) {
        const topic = (await metadata(bootstrap, [name])).topics.get(name);
        if (topic === undefined || topic.partitionsCount !== partitions) return false;
        if (!topic.partitions.every((p) => p !== undefined && p.leader >= 0)) return false;
      }
      return true;
    },
    { timeoutMs, what: `topic ${name} did not get leaders for all ${partitions} partitions` },
  );
}

export async function deleteTopic(
  bootstraps: readonly string[],
  name: string,
  timeoutMs: number,
): Promise<void> {
  await withAdmin(bootstraps, (admin) => admin.deleteTopics({ topics: [name] }));
  // Creating the same name again right away fails while any broker still lists it.
  await poll(
    async () => {
      for (const bootstrap of bootstraps) {
        const topics = await withAdmin([bootstrap], (admin) => admin.listTopics({ includeInternals: false }));
        if (topics.includes(name)) return false;
      }
      return true;
    },
    { timeoutMs, what: `topic ${name} was not deleted` },
  );
}

/**
 * Grows `name` to `count` partitions (kafka-topics --alter --partitions), then waits until every
 * broker knows a leader for each, as createTopic does.
 */
export async function createPartitions(
  bootstraps: readonly string[],
  name: string,
  count: number,
  timeoutMs: number,
): Promise<void> {
  await withAdmin(bootstraps, (admin) => admin.createPartitions({ topics: [{ name, count }] }));
  await poll(
    async () => {
      for (const bootstrap of bootstraps) {
        const topic = (await metadata(bootstrap, [name])).topics.get(name);
        if (topic === undefined || topic.partitionsCount !== count) return false;
        if (!topic.partitions.every((p) => p !== undefined && p.leader >= 0)) return false;
      }
      return true;
    },
    { timeoutMs, what: `topic ${name} did not get leaders for all ${count} partitions` },
  );
}

export async function deleteRecords(
  bootstraps: readonly string[],
  topic: string,
  partition: number,
  beforeOffset: bigint,
): Promise<void> {
  await withAdmin(bootstraps, (admin) =>
    admin.deleteRecords({ topics: [{ name: topic, partitions: [{ partition, offset: beforeOffset }] }] }),
  );
}

/** Leader broker id of each partition, as one broker sees it. */
export async function partitionLeaders(bootstraps: readonly string[], topic: string): Promise<number[]> {
  const described = await withAdmin(bootstraps, (admin) =>
    admin.metadata({ topics: [topic], forceUpdate: true }),
  );
  const found = described.topics.get(topic);
  if (found === undefined) throw new Error(`topic ${topic} does not exist`);
  return found.partitions.map((p) => p.leader);
}

/** Metadata (live brokers, no topics) as one broker sees it. */
export function withMetadata(bootstrap: string): Promise<ClusterMetadata> {
  return metadata(bootstrap, []);
}
