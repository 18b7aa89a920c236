/** Staged bytes a cache_client binding holds for all its producers together, by default. */
export const DEFAULT_STAGING_MAX_BYTES = 64 * 1024 * 1024;
/** How long a staged value may stop growing while others wait for the budget, by default. */
export const DEFAULT_STAGING_STALL_MS = 5_000;

/**
 * Others waiting for the budget: a writer whose value stops growing for `idleMs` while
 * `active()` should give it up, so that what it holds goes to writers that have data. The shape
 * of the http server's BodyPressure.
 */
export interface StagingPressure {
  readonly idleMs: number;
  active(): boolean;
  subscribe(listener: () => void): () => void;
}

/**
 * What the open accounts of one owner (a client connection, say) hold together. Its fields
 * belong to the budget.
 */
class OwnerShare {
  readonly owner: object;
  /** Open accounts of the owner, oldest first. */
  readonly open = new Set<StagingAccount>();
  /** Bytes granted to them. */
  held = 0;
  /** How many of them have each claim. */
  readonly claims = new Map<number, number>();

  constructor(owner: object) {
    this.owner = owner;
  }
}

/**
 * One staged message's share of a StagingBudget. Its fields belong to the budget, which alone
 * changes them.
 */
export class StagingAccount {
  /** Opening order: older accounts go first. */
  readonly seq: number;
  /** The owner's share this account counts against, if it has an owner. */
  readonly owner: OwnerShare | undefined;
  /** The most this message may still come to hold. */
  claim: number;
  /** Bytes granted. */
  held = 0;
  /** Bytes written and waiting for a grant. */
  pending = 0;
  state: 'open' | 'sealed' | 'released' = 'open';
  waiter: { resolve: () => void; reject: (error: Error) => void; promise: Promise<void> } | undefined;

  constructor(seq: number, claim: number, owner: OwnerShare | undefined) {
    this.seq = seq;
    this.claim = claim;
    this.owner = owner;
  }
}

function countClaim(claims: Map<number, number>, claim: number, delta: number): void {
  const count = (claims.get(claim) ?? 0) + delta;
  if (count > 0) claims.set(claim, count);
  else claims.delete(claim);
}

function largestClaim(claims: ReadonlyMap<number, number>): number {
  let largest = 0;
  for (const claim of claims.keys()) if (claim > largest) largest = claim;
  return largest;
}

function oldest(open: ReadonlySet<StagingAccount>): StagingAccount | undefined {
  for (const account of open) return account;
  return undefined;
}

/**
 * Whether `account` may take `bytes` more, among `open` accounts holding `openHeld` together
 * with `claims`, within `limit`: the oldest may always grow to its claim, the others together
 * keep within what is left beside the largest claim, so the oldest can always finish.
 */
function withinShare(
  account: StagingAccount,
  bytes: number,
  open: ReadonlySet<StagingAccount>,
  openHeld: number,
  claims: ReadonlyMap<number, number>,
  limit: number,
): boolean {
  const first = oldest(open);
  if (first === account) return true;
  return largestClaim(claims) + openHeld - (first?.held ?? 0) + bytes <= limit;
}

/**
 * The bytes every staged message of a binding holds, from its first write until the broker
 * acknowledges it (or it fails or is dropped), bounded by `maxBytes`. A write that does not fit
 * waits for bytes to be released; waiters are served oldest message first.
 *
 * Messages grow a chunk at a time to a size nobody knows in advance, so half-staged messages could
 * fill the budget and each wait for another to finish. To rule that out, the oldest open message
 * may always grow up to its claim (its largest possible value), and the others together keep
 * within what is left after the largest claim: whatever the writers do, the oldest can finish,
 * then the next oldest, and so on.
 *
 * The open messages of one owner (a client connection: HTTP/2 carries many bodies on one) hold
 * at most `maxBytesPerOwner` together, by the same rule among themselves: the owner's oldest may
 * grow to its claim, its others keep within what is left of the share. A write held back by its
 * owner's share waits without holding up the writes of other owners, so one client whose bodies
 * stall cannot take the whole budget.
 */
export class StagingBudget {
  readonly maxBytes: number;
  readonly maxBytesPerOwner: number;
  /** What writers are under while some write waits for the budget itself. */
  readonly pressure: StagingPressure;
  readonly #contention = new Set<() => void>();
  #used = 0;
  #openHeld = 0;
  #waits = 0;
  #ownerWaits = 0;
  #seq = 0;
  /** Accounts not yet sealed, oldest first. */
  readonly #open = new Set<StagingAccount>();
  /** How many open accounts have each claim, to find the largest cheaply. */
  readonly #claims = new Map<number, number>();
  /** Accounts with pending bytes, oldest first. */
  readonly #waiting: StagingAccount[] = [];
  /** The shares of owners with open accounts. */
  readonly #owners = new Map<object, OwnerShare>();

  constructor(
    maxBytes = DEFAULT_STAGING_MAX_BYTES,
    maxBytesPerOwner = maxBytes,
    stallMs = DEFAULT_STAGING_STALL_MS,
  ) {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1)
      throw new Error(`staging budget must be a positive number of bytes, not ${maxBytes}`);
    if (!Number.isSafeInteger(maxBytesPerOwner) || maxBytesPerOwner < 1)
      throw new Error(`staging share must be a positive number of bytes, not ${maxBytesPerOwner}`);
    this.maxBytes = maxBytes;
    this.maxBytesPerOwner = Math.min(maxBytesPerOwner, maxBytes);
    const listeners = this.#contention;
    this.pressure = {
      idleMs: stallMs,
      active: () => this.contended,
      subscribe(listener) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    };
  }

  /** Whether a write waits for the budget itself, rather than for its owner's share. */
  get contended(): boolean {
    for (const waiting of this.#waiting) if (this.#ownerAllows(waiting, waiting.pending)) return true;
    return false;
  }

  /** Bytes held by staged messages, granted and not yet released. */
  get usedBytes(): number {
    return this.#used;
  }

  /** Writes that had to wait for bytes to be released. */
  get waits(): number {
    return this.#waits;
  }

  /** Of those, writes that waited because their owner's share was full. */
  get ownerWaits(): number {
    return this.#ownerWaits;
  }

  /** Messages not yet sealed. */
  get accounts(): number {
    return this.#open.size;
  }

  /** Bytes the open messages of `owner` hold. */
  heldBy(owner: object): number {
    return this.#owners.get(owner)?.held ?? 0;
  }

  /**
   * An account for a new message of at most `claim` bytes (capped at the budget), counted
   * against `owner`'s share when it has one.
   */
  open(claim: number, owner?: object): StagingAccount {
    let share: OwnerShare | undefined;
    if (owner !== undefined) {
      share = this.#owners.get(owner);
      if (share === undefined) {
        share = new OwnerShare(owner);
        this.#owners.set(owner, share);
      }
    }
    const account = new StagingAccount(++this.#seq, Math.min(claim, this.maxBytes), share);
    this.#open.add(account);
    countClaim(this.#claims, account.claim, 1);
    if (share !== undefined) {
      share.open.add(account);
      countClaim(share.claims, account.claim, 1);
    }
    return account;
  }

  /**
   * Asks for `bytes` more; true when granted now. Otherwise they are granted later, in order,
   * and ready() tells when. The caller keeps held + pending within the claim.
   */
  take(account: StagingAccount, bytes: number): boolean {
    if (account.state !== 'open') throw new Error(`staging account is ${account.state}`);
    if (bytes === 0) return account.pending === 0;
    if (account.pending > 0) {
      account.pending += bytes;
      return false;
    }
    const ownerAllows = this.#ownerAllows(account, bytes);
    if (ownerAllows && !this.#olderWaitsForBudget(account) && this.#grantable(account, bytes)) {
      this.#grant(account, bytes);
      return true;
    }
    account.pending = bytes;
    let at = this.#waiting.length;
    while (at > 0 && (this.#waiting[at - 1]?.seq ?? 0) > account.seq) at--;
    this.#waiting.splice(at, 0, account);
    this.#waits++;
    if (!ownerAllows) this.#ownerWaits++;
    else this.#contended();
    return false;
  }

  /** Resolves once everything asked for is granted; rejects if the account is released first. */
  ready(account: StagingAccount): Promise<void> {
    if (account.pending === 0) return Promise.resolve();
    if (account.waiter === undefined) {
      let resolve: () => void = () => undefined;
      let reject: (error: Error) => void = () => undefined;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      account.waiter = { resolve, reject, promise };
    }
    return account.waiter.promise;
  }

  /** The message will not grow: its claim shrinks to what it has asked for. */
  finish(account: StagingAccount): void {
    if (account.state !== 'open') return;
    this.#setClaim(account, account.held + account.pending);
    this.#wake();
  }

  /**
   * The message is complete and on its way to the broker: it holds its bytes until released but
   * no longer counts against the others' share.
   */
  seal(account: StagingAccount): void {
    if (account.state !== 'open') return;
    if (account.pending > 0) throw new Error('a staging account cannot be sealed while it waits');
    account.state = 'sealed';
    this.#leaveOpen(account);
    this.#wake();
  }

  /** Gives back what the account holds; a waiting ready() rejects with `reason`. Idempotent. */
  release(account: StagingAccount, reason?: Error): void {
    if (account.state === 'released') return;
    if (account.state === 'open') this.#leaveOpen(account);
    account.state = 'released';
    this.#used -= account.held;
    account.held = 0;
    if (account.pending > 0) {
      account.pending = 0;
      const at = this.#waiting.indexOf(account);
      if (at >= 0) this.#waiting.splice(at, 1);
    }
    const waiter = account.waiter;
    account.waiter = undefined;
    waiter?.reject(reason ?? new Error('staged message was dropped'));
    this.#wake();
  }

  #leaveOpen(account: StagingAccount): void {
    this.#open.delete(account);
    this.#openHeld -= account.held;
    countClaim(this.#claims, account.claim, -1);
    const share = account.owner;
    if (share === undefined) return;
    share.open.delete(account);
    share.held -= account.held;
    countClaim(share.claims, account.claim, -1);
    if (share.open.size === 0) this.#owners.delete(share.owner);
  }

  #setClaim(account: StagingAccount, claim: number): void {
    countClaim(this.#claims, account.claim, -1);
    if (account.owner !== undefined) countClaim(account.owner.claims, account.claim, -1);
    account.claim = claim;
    countClaim(this.#claims, claim, 1);
    if (account.owner !== undefined) countClaim(account.owner.claims, claim, 1);
  }

  /** Tells the pressure's listeners that a write (now) waits for the budget. */
  #contended(): void {
    for (const listener of [...this.#contention]) listener();
  }

  /** Whether the owner's share lets the account take `bytes` more (no owner: always). */
  #ownerAllows(account: StagingAccount, bytes: number): boolean {
    const share = account.owner;
    if (share === undefined) return true;
    return withinShare(account, bytes, share.open, share.held, share.claims, this.maxBytesPerOwner);
  }

  /** Whether an older account waits for the budget; one held back by its owner's share does not count. */
  #olderWaitsForBudget(account: StagingAccount): boolean {
    for (const waiting of this.#waiting) {
      if (waiting.seq > account.seq) return false;
      if (this.#ownerAllows(waiting, waiting.pending)) return true;
    }
    return false;
  }

  #grantable(account: StagingAccount, bytes: number): boolean {
    if (this.#used + bytes > this.maxBytes) return false;
    return withinShare(account, bytes, this.#open, this.#openHeld, this.#claims, this.maxBytes);
  }

  #grant(account: StagingAccount, bytes: number): void {
    account.held += bytes;
    this.#used += bytes;
    this.#openHeld += bytes;
    if (account.owner !== undefined) account.owner.held += bytes;
  }

  /**
   * Grants waiters in order. One held back by its owner's share is passed over (its owner's
   * other messages must move first); one held back by the budget stops the round, so no later
   * writer takes the room it waits for.
   */
  #wake(): void {
    for (let at = 0; at < this.#waiting.length;) {
      const account = this.#waiting[at] as StagingAccount;
      if (!this.#ownerAllows(account, account.pending)) {
        at++;
        continue;
      }
      if (!this.#grantable(account, account.pending)) {
        // Perhaps held back by its owner's share until now: it waits for the budget itself.
        this.#contended();
        return;
      }
      this.#waiting.splice(at, 1);
      this.#grant(account, account.pending);
      account.pending = 0;
      const waiter = account.waiter;
      account.waiter = undefined;
      waiter?.resolve();
    }
  }
}
