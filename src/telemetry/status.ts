import type { Binding } from '../engine/binding.ts';
import { bindingProblem, PROBE_TIMEOUT_MS, type ReadinessSource } from './readiness.ts';

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
   * serves what it has cached, so this does not fail `/ready`.
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

export async function collectStatus(
  source: ReadinessSource,
  timeoutMs = PROBE_TIMEOUT_MS,
): Promise<GatewayStatus> {
  const configs = [...source.config.bindings.values()];
  const bindings = await Promise.all(
    configs.map(async ({ name, type, kind }): Promise<BindingStatus> => {
      const started = source.binding(name) !== undefined;
      const problem = await bindingProblem(source, name, timeoutMs);
      return problem === undefined ? { name, type, kind, started } : { name, type, kind, started, problem };
    }),
  );
  const caches: CacheStatus[] = [];
  for (const { name } of configs) {
    const binding = source.binding(name);
    if (binding !== undefined && isCacheAware(binding)) {
      const ingestProblem = binding.ingestProblem?.();
      caches.push(
        ingestProblem === undefined
          ? { binding: name, partitions: binding.status() }
          : { binding: name, ingestProblem, partitions: binding.status() },
      );
    }
  }
  return { stopping: source.stopping(), bindings, caches };
}
