import type { Binding } from '../engine/binding.ts';
import {
  bindingProblem,
  ConnectionProbes,
  describeProblem,
  type Audience,
  type ReadinessSource,
} from './readiness.ts';

/** The JSON `GET /status` answers with; `kgate status` reads the same shape. */
export interface GatewayStatus {
  /** False while shutting down: bindings are then reported as they are, but no longer serve. */
  readonly stopping: boolean;
  readonly bindings: readonly BindingStatus[];
  readonly caches: readonly CacheStatus[];
}

export interface BindingStatus {
  readonly name: string;
  readonly type: string;
  readonly kind: string;
  readonly started: boolean;
  /** Why the binding cannot serve now (the reason `/ready` gives); absent when healthy. */
  readonly problem?: string;
}

export interface CacheStatus {
  /** The cache_server binding. */
  readonly binding: string;
  /**
   * Why it has stopped ingesting from Kafka (a full disk); absent while it ingests. It still
   * serves what it has cached, so this does not fail `/ready`. Clients not on loopback get
   * `INGEST_PAUSED` only, since the reason names the store's path.
   */
  readonly ingestProblem?: string;
  readonly partitions: readonly CachePartitionStatus[];
}

export interface CachePartitionStatus {
  readonly topic: string;
  readonly partition: number;
  readonly firstOffset: number | null;
  readonly lastOffset: number | null;
  readonly nextOffset: number;
  readonly highWatermark: number;
  readonly lag: number;
  readonly bytes: number;
  readonly messages: number;
  readonly bootstrap: boolean;
}

/** A binding that can list what it caches, such as a kafka cache_server. */
interface CacheAware {
  status(): readonly CachePartitionStatus[];
  ingestProblem?(): string | undefined;
}

function isCacheAware(binding: Binding): binding is Binding & CacheAware {
  return typeof (binding as Partial<CacheAware>).status === 'function';
}

/** What a client not on loopback reads for a cache whose ingest has paused. */
export const INGEST_PAUSED = 'ingest paused';

/**
 * The bindings, their health and every cached partition. Topic names and offsets are there for
 * any audience (the metrics name them too); the details of a problem only for loopback clients.
 */
export async function collectStatus(
  source: ReadinessSource,
  probes: ConnectionProbes = new ConnectionProbes(),
  audience: Audience = 'local',
): Promise<GatewayStatus> {
  const configs = [...source.config.bindings.values()];
  const bindings = await Promise.all(
    configs.map(async ({ name, type, kind }): Promise<BindingStatus> => {
      const started = source.binding(name) !== undefined;
      const found = await bindingProblem(source, name, probes);
      if (found === undefined) return { name, type, kind, started };
      return { name, type, kind, started, problem: describeProblem(found, audience) };
    }),
  );
  const caches: CacheStatus[] = [];
  for (const { name } of configs) {
    const binding = source.binding(name);
    if (binding !== undefined && isCacheAware(binding)) {
      const reason = binding.ingestProblem?.();
      const ingestProblem = reason === undefined || audience === 'local' ? reason : INGEST_PAUSED;
      caches.push(
        ingestProblem === undefined
          ? { binding: name, partitions: binding.status() }
          : { binding: name, ingestProblem, partitions: binding.status() },
      );
    }
  }
  return { stopping: source.stopping(), bindings, caches };
}
