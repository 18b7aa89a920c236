import type { BindingsCheck } from '../config/index.ts';
import type { BindingRegistry } from './registry.ts';
import type { ThreadService } from './workers/service.ts';

/**
 * What the composition root hands the runtime: the bindings this build runs and the services that
 * connect worker threads to the main thread. The engine knows bindings through this alone.
 *
 * Functions cannot be sent to a worker thread, so a worker is sent `module` and imports it: that
 * module exports this same composition under the name `composition`.
 */
export interface Composition {
  /** URL of the module exporting this object as `composition` (its own `import.meta.url`). */
  readonly module: string;
  /** A new registry of every binding this build can run. */
  registry(): BindingRegistry;
  readonly threadServices: readonly ThreadService[];
  /** What starting the bindings would refuse of a config, checked when it is loaded. */
  readonly checkBindings?: BindingsCheck;
}

export function isComposition(value: unknown): value is Composition {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Partial<Composition>;
  return (
    typeof candidate.module === 'string' &&
    typeof candidate.registry === 'function' &&
    Array.isArray(candidate.threadServices)
  );
}

/** The composition a worker thread is told to import. */
export async function importComposition(url: string): Promise<Composition> {
  const exports: { readonly composition?: unknown } = await import(url);
  if (!isComposition(exports.composition)) throw new Error(`${url} exports no composition`);
  return exports.composition;
}
