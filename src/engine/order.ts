import type { BindingConfig } from '../config/index.ts';

/** The bindings a binding sends streams to: its default exit and every route's exit. */
export function exitsOf(binding: BindingConfig): string[] {
  const exits = new Set<string>();
  if (binding.exit !== undefined) exits.add(binding.exit);
  for (const route of binding.routes) exits.add(route.exit);
  return [...exits];
}

/**
 * Orders bindings so that every binding comes after the bindings it exits to: those must be up
 * before anything can send a stream into them. Config validation already rejects cycles; a cycle
 * here is a programming error.
 */
export function startOrder(bindings: ReadonlyMap<string, BindingConfig>): BindingConfig[] {
  const ordered: BindingConfig[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, path: readonly string[]): void => {
    const seen = state.get(name);
    if (seen === 'done') return;
    if (seen === 'visiting') throw new Error(`exit cycle ${[...path, name].join(' -> ')}`);
    const binding = bindings.get(name);
    if (binding === undefined) throw new Error(`no binding named "${name}"`);
    state.set(name, 'visiting');
    for (const exit of exitsOf(binding)) visit(exit, [...path, name]);
    state.set(name, 'done');
    ordered.push(binding);
  };
  for (const name of [...bindings.keys()].sort()) visit(name, []);
  return ordered;
}
