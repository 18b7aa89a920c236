import type { BindingFactory } from './binding.ts';

/** Maps (type, kind) to the factory that builds that binding. */
export class BindingRegistry {
  readonly #factories = new Map<string, Map<string, BindingFactory>>();

  register(type: string, kind: string, factory: BindingFactory): this {
    let kinds = this.#factories.get(type);
    if (kinds === undefined) {
      kinds = new Map();
      this.#factories.set(type, kinds);
    }
    if (kinds.has(kind)) throw new Error(`binding ${type} ${kind} is registered twice`);
    kinds.set(kind, factory);
    return this;
  }

  get(type: string, kind: string): BindingFactory | undefined {
    return this.#factories.get(type)?.get(kind);
  }

  /**
   * The same kinds, each built by the factory `replace` returns for it: how a worker thread runs
   * some kinds as stand-ins for bindings of the main thread.
   */
  map(replace: (type: string, kind: string, factory: BindingFactory) => BindingFactory): BindingRegistry {
    const mapped = new BindingRegistry();
    for (const [type, kinds] of this.#factories)
      for (const [kind, factory] of kinds) mapped.register(type, kind, replace(type, kind, factory));
    return mapped;
  }

  /** type -> kinds, for error messages. */
  entries(): ReadonlyMap<string, readonly string[]> {
    return new Map([...this.#factories].map(([type, kinds]) => [type, [...kinds.keys()]]));
  }
}
