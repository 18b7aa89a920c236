/**
 * The fan server takes no options, as in Zilla: its schema refuses `options` and `routes`, and
 * needs an `exit`.
 */
export type FanServerOptionsJson = Readonly<Record<string, never>>;

/** Bounds kgate keeps on a fan server, fixed rather than options since Zilla has none. */
export interface FanServerLimits {
  /**
   * Bytes queued for one client that does not read: past them that client is closed rather than
   * holding up, or growing memory for, every other client of the fan.
   */
  readonly maxQueuedBytes: number;
}

export const FAN_SERVER_LIMITS: FanServerLimits = { maxQueuedBytes: 1024 * 1024 };

/** What the fan server reads of its options: its fixed bounds (the schema allows no options). */
export function fanServerOptions(_options: unknown): FanServerLimits {
  return FAN_SERVER_LIMITS;
}
