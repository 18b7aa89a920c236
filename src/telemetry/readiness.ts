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

/**
 * Why a binding cannot serve. The summary says what is wrong in terms anyone may read; the detail
 * says why, in the words of the error, which may name broker addresses, the SASL user, file paths
 * or certificates, so it goes only to loopback clients (see `Audience`).
 */
export interface Problem {
  readonly summary: string;
  readonly detail?: string;
}

/** Who asked: a loopback client gets the details of each problem, any other the summaries. */
export type Audience = 'local' | 'remote';

/** A problem as one line for the given audience. */
export function describeProblem(problem: Problem, audience: Audience): string {
  return problem.detail === undefined || audience === 'remote'
    ? problem.summary
    : `${problem.summary}: ${problem.detail}`;
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

/**
 * How long a probe that found a problem answers for the binding. A binding without a live
 * connection opens one to answer a probe, and with SASL that is a login on the broker: without
 * this, a client looping on `/ready` after a password rotation made one failed login per request.
 * A healthy answer is not kept: while a connection is open a probe costs nothing.
 */
export const PROBE_REUSE_MS = 5_000;

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

export interface ProbeOptions {
  /** Bound on each probe; PROBE_TIMEOUT_MS by default. */
  readonly timeoutMs?: number;
  /** How long a probe that found a problem is reused; PROBE_REUSE_MS by default, 0 for never. */
  readonly reuseMs?: number;
  /** The clock, in milliseconds. */
  readonly now?: () => number;
  /** Told of each check made and each answer taken from another (see probe-metrics.ts). */
  readonly observer?: ProbeObserver;
}

export interface ProbeObserver {
  /** A binding's connection was checked: with a connection gone, a broker login. */
  checked(binding: string, problem: boolean): void;
  /** An answer was taken from a check in flight or from a problem still reused. */
  reused(binding: string): void;
}

interface Probe {
  readonly problem: Promise<string | undefined>;
  /** When it answered with a problem; undefined while it runs. */
  failedAt?: number;
}

/**
 * The connection probes of one telemetry server, shared by all its `/ready` and `/status`
 * requests: requests that arrive while a binding is probed wait for that probe, and one that
 * found a problem answers for `reuseMs`, so however many requests come, a binding without a
 * connection is probed (a broker login) at most once per `reuseMs`. Keyed by the binding object,
 * so a binding restarted by a reload is probed afresh.
 */
export class ConnectionProbes {
  readonly #timeoutMs: number;
  readonly #reuseMs: number;
  readonly #now: () => number;
  readonly #observer: ProbeObserver | undefined;
  readonly #last = new WeakMap<Binding, Probe>();
  #probes = 0;

  constructor(options: ProbeOptions = {}) {
    this.#timeoutMs = options.timeoutMs ?? PROBE_TIMEOUT_MS;
    this.#reuseMs = options.reuseMs ?? PROBE_REUSE_MS;
    this.#now = options.now ?? Date.now;
    this.#observer = options.observer;
  }

  /** Probes started over this object's life. */
  get started(): number {
    return this.#probes;
  }

  /** Why the binding has no live upstream connection, or undefined when it has one. */
  connectionProblem(binding: Binding & ConnectionAware): Promise<string | undefined> {
    const last = this.#last.get(binding);
    if (last !== undefined && (last.failedAt === undefined || this.#now() - last.failedAt < this.#reuseMs)) {
      this.#observer?.reused(binding.name);
      return last.problem;
    }
    this.#probes++;
    const probe: Probe = {
      problem: within(
        binding.connectionProblem().catch((error: unknown) => String(error)),
        this.#timeoutMs,
      ).then((problem) => {
        if (problem === undefined) this.#last.delete(binding);
        else probe.failedAt = this.#now();
        this.#observer?.checked(binding.name, problem !== undefined);
        return problem;
      }),
    };
    this.#last.set(binding, probe);
    return probe.problem;
  }
}

/** Why the named binding cannot serve now, or undefined when it can. */
export async function bindingProblem(
  source: Pick<ReadinessSource, 'binding'>,
  name: string,
  probes: ConnectionProbes,
): Promise<Problem | undefined> {
  const binding = source.binding(name);
  if (binding === undefined) return { summary: 'not started' };
  if (!isConnectionAware(binding)) return undefined;
  const detail = await probes.connectionProblem(binding);
  return detail === undefined ? undefined : { summary: 'no live Kafka broker connection', detail };
}

export async function checkReadiness(
  source: ReadinessSource,
  probes: ConnectionProbes = new ConnectionProbes(),
  audience: Audience = 'local',
): Promise<Readiness> {
  if (source.stopping()) return { ready: false, problems: [{ reason: 'stopping' }] };
  const checks = [...source.config.bindings.values()].map(async (config): Promise<NotReady | undefined> => {
    const problem = await bindingProblem(source, config.name, probes);
    return problem === undefined
      ? undefined
      : { binding: config.name, reason: describeProblem(problem, audience) };
  });
  const problems = (await Promise.all(checks)).filter((p): p is NotReady => p !== undefined);
  return { ready: problems.length === 0, problems };
}
