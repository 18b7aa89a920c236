import type { Logger } from 'pino';
import type { CatalogJson } from '../models/config.ts';
import type { Registry } from 'prom-client';
import type { BindingConfig } from '../config/index.ts';
import type { Guard } from '../guards/index.ts';
import type { Listeners } from './listeners.ts';

/**
 * A running binding. The engine starts a binding only after every binding it exits to has started,
 * so a binding may look its exits up in `start()` and use them right away.
 */
export interface Binding {
  readonly name: string;
  /**
   * Resolves once the binding is set up and takes work: bindings that exit to it may call it from
   * their own start. It does not wait for anything outside (a broker, say): what needs that waits
   * for it per call, within the caller's deadline, and `ready()` says when it is there. `signal`
   * aborts when the start deadline, if any, has passed.
   */
  start(signal: AbortSignal): Promise<void>;
  /**
   * Resolves once the binding serves without waiting for anything outside (a broker has
   * answered). Rejects when `signal` aborts first, or at once when what it waits for refuses it
   * (a broker refusing kgate's credentials), with an error saying what it waited for. Absent: ready
   * once started.
   */
  ready?(signal: AbortSignal): Promise<void>;
  /** Releases sockets, files and timers. `signal` aborts when the drain budget is spent. */
  stop(signal: AbortSignal): Promise<void>;
}

export interface BindingContext {
  readonly config: BindingConfig;
  readonly logger: Logger;
  /** Process-wide registry; metric names are the binding's concern, labels carry the binding name. */
  readonly metrics: Registry;
  /** Directory under which bindings with persistent state keep it, one sub-directory per binding. */
  readonly stateDir: string;
  /**
   * The directory every binding's `stateDir` is under (`kgate start --cache-dir`), so that a
   * binding publishing files can refuse to publish it; the engine always sets it.
   */
  readonly cacheDir?: string;
  /**
   * The config's top-level `catalogs`, as written, for bindings whose options name models
   * (kafka topics' `key` and `value`, http server `requests`).
   */
  readonly catalogs?: { readonly [name: string]: CatalogJson };
  /** The config file the binding came from, so relative paths in options resolve beside it. */
  readonly configFile?: string;
  /**
   * Encoded record bytes each cache_server may keep (`--cache-max-bytes`); undefined for no limit.
   */
  readonly cacheMaxBytes?: number;
  /**
   * Other threads of this process listen on the same ports (`kgate start --workers`): listeners
   * bind with SO_REUSEPORT so that the kernel spreads connections across the threads.
   */
  readonly sharedListeners?: boolean;
  /** The config's guards by name, started; absent or empty when it has none. */
  readonly guards?: ReadonlyMap<string, Guard>;
  /** The started binding of that name; throws if the name is unknown (config validation prevents it). */
  lookup(name: string): Binding;
  /**
   * Listening sockets that outlive a binding restarted by a reload, so that its port never
   * refuses a connection (see ListenerPool); absent outside an engine, where a binding listens
   * on its own.
   */
  readonly listeners?: Listeners;
  /**
   * Whether the named binding stops along with this one (shutdown, or a reload that restarts
   * both). A listener stopping while its exit stays must not drain that exit, nor close the
   * connections it handed to it; absent: every binding stops.
   */
  isStopping?(name: string): boolean;
}

export type BindingFactory = (context: BindingContext) => Binding;
