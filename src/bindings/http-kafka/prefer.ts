/** Longest `Prefer: wait` honoured, so a client cannot hold a request (and its stream) open for hours. */
export const MAX_WAIT_SECONDS = 600;

export interface Preferences {
  /** Seconds, capped at MAX_WAIT_SECONDS; absent when not asked for. */
  readonly wait?: number;
  readonly respondAsync: boolean;
}

/**
 * RFC 7240 Prefer headers (several may be sent, each a comma list of `token[=value][;params]`), read
 * with splits and slices only: one pass over what the client sent.
 */
export function parsePrefer(header: string | readonly string[] | undefined): Preferences {
  const values = header === undefined ? [] : typeof header === 'string' ? [header] : header;
  let wait: number | undefined;
  let respondAsync = false;
  for (const value of values) {
    for (const item of value.split(',')) {
      const [preference = ''] = item.split(';');
      const eq = preference.indexOf('=');
      const name = (eq < 0 ? preference : preference.slice(0, eq)).trim().toLowerCase();
      const value = eq < 0 ? '' : preference.slice(eq + 1).trim();
      const raw =
        value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
      if (name === 'respond-async') respondAsync = true;
      else if (name === 'wait' && wait === undefined && /^\d+$/.test(raw))
        wait = Math.min(Number(raw), MAX_WAIT_SECONDS);
    }
  }
  return wait === undefined ? { respondAsync } : { wait, respondAsync };
}
