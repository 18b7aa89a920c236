import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { BindingConfig, LoadedConfig } from '../config/index.ts';
import { exitsOf, startOrder } from './order.ts';

/** What a reload from one valid config to the next does to the running bindings. */
export interface ReloadPlan {
  /** In the new config only. */
  readonly added: readonly string[];
  /** In both, with a different type, kind, options, routes or exit. */
  readonly changed: readonly string[];
  /** In the old config only. */
  readonly removed: readonly string[];
  /**
   * Unchanged themselves, but restarted because they exit, directly or through other bindings, to
   * a changed one: they took references to their exits at start and would keep using the old ones.
   */
  readonly dependents: readonly string[];
  /** Bindings to stop, dependents before their exits (reverse of the old start order). */
  readonly stop: readonly string[];
  /** Bindings to start, exits before their dependents (the new start order). */
  readonly start: readonly string[];
  /** The telemetry section differs. */
  readonly telemetry: boolean;
}

function sameBinding(a: BindingConfig, b: BindingConfig): boolean {
  const shape = (c: BindingConfig) => ({
    type: c.type,
    kind: c.kind,
    options: c.options,
    routes: c.routes,
    exit: c.exit ?? null,
  });
  return isDeepStrictEqual(shape(a), shape(b));
}

/** Whether two configs have the same guards, option for option. */
export function sameGuards(previous: LoadedConfig, next: LoadedConfig): boolean {
  const entries = (config: LoadedConfig): string =>
    JSON.stringify([...(config.guards ?? new Map()).entries()]);
  return entries(previous) === entries(next);
}

/** Whether a binding holds a guard: it verifies credentials, or routes or expands by a session. */
function consultsGuards(config: BindingConfig): boolean {
  if ('authorization' in config.options) return true;
  return config.routes.some(
    (route) => route.guarded !== undefined || JSON.stringify(route.with ?? {}).includes('${guarded'),
  );
}

/**
 * Compares two valid configs. A binding restarts when its own config changed or when any binding it
 * exits to restarts; every other binding keeps running with its open streams. Bindings that exited
 * to a removed one cannot be unchanged, as the new config would then name a missing exit.
 */
export function planReload(previous: LoadedConfig, next: LoadedConfig): ReloadPlan {
  const added: string[] = [];
  const changed: string[] = [];
  const guardsSame = sameGuards(previous, next);
  const removed: string[] = [];
  for (const [name, config] of next.bindings) {
    const old = previous.bindings.get(name);
    if (old === undefined) added.push(name);
    else if (!sameBinding(old, config)) changed.push(name);
    else if (!guardsSame && consultsGuards(config)) changed.push(name);
  }
  for (const name of previous.bindings.keys()) if (!next.bindings.has(name)) removed.push(name);

  const entrants = new Map<string, string[]>();
  for (const config of next.bindings.values()) {
    for (const exit of exitsOf(config)) {
      const list = entrants.get(exit) ?? [];
      list.push(config.name);
      entrants.set(exit, list);
    }
  }
  const restarting = new Set(changed);
  const pending = [...changed];
  for (let name = pending.pop(); name !== undefined; name = pending.pop()) {
    for (const entrant of entrants.get(name) ?? []) {
      if (restarting.has(entrant) || added.includes(entrant)) continue;
      restarting.add(entrant);
      pending.push(entrant);
    }
  }
  const dependents = [...next.bindings.keys()].filter((n) => restarting.has(n) && !changed.includes(n));
  const stopping = new Set([...restarting, ...removed]);
  const starting = new Set([...restarting, ...added]);
  return {
    added,
    changed,
    removed,
    dependents,
    stop: startOrder(previous.bindings)
      .map((c) => c.name)
      .filter((n) => stopping.has(n))
      .reverse(),
    start: startOrder(next.bindings)
      .map((c) => c.name)
      .filter((n) => starting.has(n)),
    telemetry: !isDeepStrictEqual(previous.telemetry ?? null, next.telemetry ?? null),
  };
}

export interface ConfigWatcher {
  close(): void;
}

/**
 * Calls `onChange` once things settle after the file changes. The directory is watched as well as
 * the file because editors and config managers often write a new file and rename it over the old
 * one, after which a watcher on the file alone still follows the replaced inode; the file watcher
 * is therefore re-armed on every change.
 */
export function watchConfigFile(
  file: string,
  onChange: () => void,
  onError: (error: Error) => void,
  debounceMs = 200,
): ConfigWatcher {
  const path = resolve(file);
  const name = basename(path);
  let timer: NodeJS.Timeout | undefined;
  let fileWatcher: FSWatcher | undefined;
  let closed = false;
  const schedule = (): void => {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      armFile();
      onChange();
    }, debounceMs);
  };
  const armFile = (): void => {
    fileWatcher?.close();
    fileWatcher = undefined;
    if (closed) return;
    try {
      const watcher = watch(path, schedule);
      // The file may be gone between a delete and its replacement; the directory watcher covers that.
      watcher.on('error', () => watcher.close());
      watcher.unref();
      fileWatcher = watcher;
    } catch {
      fileWatcher = undefined;
    }
  };
  const dirWatcher = watch(dirname(path), (_event, changed) => {
    if (changed === null || changed === name) schedule();
  });
  dirWatcher.on('error', onError);
  dirWatcher.unref();
  armFile();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      fileWatcher?.close();
      dirWatcher.close();
    },
  };
}
