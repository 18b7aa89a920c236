import type { LoadedConfig } from '../config/index.ts';
import type { Binding } from '../engine/binding.ts';

export interface NotReady {
  /** Absent when the problem is the gateway's as a whole. */
  readonly binding?: string;
  readonly reason: string;
}

export interface Readiness {
  readonly ready: boolean;
  readonly problems: readonly NotReady[];
}

/** What readiness needs from the running gateway; the engine provides it. */
export interface ReadinessSource {
  readonly config: LoadedConfig;
  binding(name: string): Binding | undefined;
  /** True once shutdown has begun: a draining gateway should receive no new traffic. */
  stopping(): boolean;
}

/** A binding that depends on an upstream connection, such as a kafka client. */
interface ConnectionAware {
  connectionProblem(): Promise<string | undefined>;
}

function isConnectionAware(binding: Binding): binding is Binding & ConnectionAware {
  return typeof (binding as Partial<ConnectionAware>).connectionProblem === 'function';
}

/**
 * A probe may have to open a connection; bound it so that a blackholed broker makes the check
 * answer "not ready" quickly instead of holding the orchestrator's request until it gives up.
 */
export const PROBE_TIMEOUT_MS = 2_000;

async function within(probe: Promise<string | undefined>, timeoutMs: number): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`no broker answered within ${timeoutMs} ms`), timeoutMs);
    timer.unref();
  });
  try {
    return await Promise.race([probe, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Why the named binding cannot serve now, or undefined when it can. */
export async function bindingProblem(
  source: Pick<ReadinessSource, 'binding'>,
  name: string,
  timeoutMs = PROBE_TIMEOUT_MS,
): Promise<string | undefined> {
  const binding = source.binding(name);
  if (binding === undefined) return 'not started';
  if (!isConnectionAware(binding)) return undefined;
  const problem = await within(
    binding.connectionProblem().catch((error: unknown) => String(error)),
    timeoutMs,
  );
  return problem === undefined ? undefined : `no live Kafka broker connection: ${problem}`;
}

export async function checkReadiness(
  source: ReadinessSource,
  timeoutMs = PROBE_TIMEOUT_MS,
): Promise<Readiness> {
  if (source.stopping()) return { ready: false, problems: [{ reason: 'stopping' }] };
  const checks = [...source.config.bindings.values()].map(async (config): Promise<NotReady | undefined> => {
    const reason = await bindingProblem(source, config.name, timeoutMs);
    return reason === undefined ? undefined : { binding: config.name, reason };
  });
  const problems = (await Promise.all(checks)).filter((p): p is NotReady => p !== undefined);
  return { ready: problems.length === 0, problems };
}
