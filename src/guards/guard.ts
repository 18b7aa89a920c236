/**
 * What a guard is to the bindings that consult it: something that turns the credentials a client
 * presented into a session (who the client is, which scopes it holds, until when) or refuses them.
 * The http server extracts credentials as its `authorization` option says and asks its guard once
 * per request; routes then admit or pass over the request by their `guarded` scopes, and the proxies
 * read the session's identity and attributes into their `with` templates.
 */

export interface GuardSession {
  /** The guard that verified the credentials. */
  readonly guard: string;
  /** The identity claim (`sub` unless the guard names another); absent when the token has none. */
  readonly identity?: string;
  /** The scopes (roles) the credentials grant. */
  readonly scopes: ReadonlySet<string>;
  /** Values of the guard's `attributes`, by attribute name; absent claims are absent here. */
  readonly attributes: Readonly<Record<string, string>>;
  /** Epoch milliseconds after which the credentials are no longer valid; absent: never. */
  readonly expiresAt?: number;
  /** Epoch milliseconds at which a stream authorised by them is challenged to renew them. */
  readonly challengeAt?: number;
}

/** Why credentials were refused; safe to log: it never quotes the credentials. */
export interface GuardRefusal {
  readonly refused: string;
}

export type GuardVerdict = GuardSession | GuardRefusal;

export function isRefusal(verdict: GuardVerdict): verdict is GuardRefusal {
  return 'refused' in verdict;
}

export interface Guard {
  readonly name: string;
  /** Verifies `credentials` (a bearer token); never throws for anything a client can send. */
  verify(credentials: string): Promise<GuardVerdict>;
  /** Stops background work (key set refreshes). */
  close(): void;
}

/**
 * What the http server learned about a request's credentials, for the bindings behind it. Absent
 * when the server has no `authorization`.
 */
export interface Authorization {
  /** The guard the server's `authorization` names. */
  readonly guard: string;
  /** Whether the request carried credentials where the server looks for them. */
  readonly presented: boolean;
  /** Set when the credentials verified. */
  readonly session?: GuardSession;
}

/** A route's `guarded`: the scopes each named guard must grant. */
export type Guarded = Readonly<Record<string, readonly string[]>>;

/**
 * Whether a request with `authorization` may take a route `guarded` so: every guard the route
 * names verified the request's credentials, and granted every scope listed for it.
 */
export function admits(guarded: Guarded | undefined, authorization: Authorization | undefined): boolean {
  if (guarded === undefined) return true;
  for (const [guard, scopes] of Object.entries(guarded)) {
    const session = authorization?.session;
    if (session === undefined || session.guard !== guard) return false;
    for (const scope of scopes) if (!session.scopes.has(scope)) return false;
  }
  return true;
}

/**
 * How a request that no route admitted, though a guarded route's conditions matched it, is
 * answered: `unauthenticated` (no valid credentials: 401) or `forbidden` (valid, lacking a scope: 403).
 */
export type GuardedRefusal = 'unauthenticated' | 'forbidden';

export function refusalOf(authorization: Authorization | undefined): GuardedRefusal {
  return authorization?.session === undefined ? 'unauthenticated' : 'forbidden';
}
