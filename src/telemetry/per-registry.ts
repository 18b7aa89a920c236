import type { Registry } from 'prom-client';

/**
 * Metrics of a binding kind are registered once per registry, however many bindings of the kind
 * run on it (prom-client refuses a name twice); `create` makes them the first time a registry is
 * asked for, with that registry as their only one.
 */
export function perRegistry<T>(create: (registers: Registry[]) => T): (registry: Registry) => T {
  const made = new WeakMap<Registry, T>();
  return (registry) => {
    let metrics = made.get(registry);
    if (metrics === undefined) {
      metrics = create([registry]);
      made.set(registry, metrics);
    }
    return metrics;
  };
}
