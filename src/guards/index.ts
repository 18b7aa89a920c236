import type { Logger } from 'pino';
import type { Guard } from './guard.ts';
import { JwtGuard, type JwtGuardTuning } from './jwt/guard.ts';

export { admits, isRefusal, refusalOf } from './guard.ts';
export type {
  Authorization,
  Guard,
  Guarded,
  GuardedRefusal,
  GuardRefusal,
  GuardSession,
  GuardVerdict,
} from './guard.ts';
export { JwtGuard, MAX_TOKEN_CHARS } from './jwt/guard.ts';
export type { JwtGuardTuning } from './jwt/guard.ts';
export { GUARD_DEFINITION, JWT_GUARD_OPTIONS } from './jwt/schema.ts';

/** A top-level `guards` entry as the loaded config keeps it. */
export interface GuardConfig {
  readonly name: string;
  readonly type: string;
  /** As validated by the schema for this type. */
  readonly options: Readonly<Record<string, unknown>>;
}

/** The guards of a config, each started (inline keys imported, a key set being fetched). */
export async function startGuards(
  configs: ReadonlyMap<string, GuardConfig>,
  log: Logger,
  tuning: JwtGuardTuning = {},
): Promise<Map<string, Guard>> {
  const guards = new Map<string, Guard>();
  try {
    for (const config of configs.values()) {
      // An inline guard verifies nothing: its identity and credentials are a kafka client's.
      if (config.type !== 'jwt') continue;
      const guard = new JwtGuard(config.name, config.options, log.child({ guard: config.name }), tuning);
      guards.set(config.name, guard);
      try {
        await guard.start();
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        throw new Error(`guard ${config.name}: ${reason}`, { cause: error });
      }
    }
  } catch (error) {
    for (const guard of guards.values()) guard.close();
    throw error;
  }
  return guards;
}
