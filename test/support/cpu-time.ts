/**
 * What `run` costs in CPU time (user and system, every thread of the process, so garbage collection
 * included), in milliseconds, and what it returned. A loaded machine stretches the wall-clock time
 * of the same work many times over (a load average of 25 on 2 cores made it 4 to 12 times) while
 * its CPU time barely moves: a bound on how much work something does is put on this.
 */
export function cpuTimed<T>(run: () => T): { readonly ms: number; readonly value: T } {
  const started = process.cpuUsage();
  const value = run();
  const { user, system } = process.cpuUsage(started);
  return { ms: (user + system) / 1000, value };
}

/** cpuTimed for work that waits on the way; nothing else may be running in the process meanwhile. */
export async function cpuTimedAsync<T>(
  run: () => Promise<T>,
): Promise<{ readonly ms: number; readonly value: T }> {
  const started = process.cpuUsage();
  const value = await run();
  const { user, system } = process.cpuUsage(started);
  return { ms: (user + system) / 1000, value };
}
