/** Staged bytes a cache_client binding holds for all its producers together, by default. */
export const DEFAULT_STAGING_MAX_BYTES = 64 * 1024 * 1024;

/**
 * One staged message's share of a StagingBudget. Its fields belong to the budget, which alone
 * changes them.
 */
export class StagingAccount {
  /** Opening order: older accounts go first. */
  readonly seq: number;
  /** The most this message may still come to hold. */
  claim: number;
  /** Bytes granted. */
  held = 0;
  /** Bytes written and waiting for a grant. */
  pending = 0;
  state: 'open' | 'sealed' | 'released' = 'open';
  waiter: { resolve: () => void; reject: (error: Error) => void; promise: Promise<void> } | undefined;

  constructor(seq: number, claim: number) {
    this.seq = seq;
    this.claim = claim;
  }
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
 */
export class StagingBudget {
  readonly maxBytes: number;
  #used = 0;
  #openHeld = 0;
  #waits = 0;
  #seq = 0;
  /** Accounts not yet sealed, oldest first. */
  readonly #open = new Set<StagingAccount>();
  /** How many open accounts have each claim, to find the largest cheaply. */
  readonly #claims = new Map<number, number>();
  /** Accounts with pending bytes, oldest first. */
  readonly #waiting: StagingAccount[] = [];

  constructor(maxBytes = DEFAULT_STAGING_MAX_BYTES) {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1)
      throw new Error(`staging budget must be a positive number of bytes, not ${maxBytes}`);
    this.maxBytes = maxBytes;
  }

  /** Bytes held by staged messages, granted and not yet released. */
  get usedBytes(): number {
    return this.#used;
  }

  /** Writes that had to wait for bytes to be released. */
  get waits(): number {
    return this.#waits;
  }

  /** Messages open or waiting for the broker. */
  get accounts(): number {
    return this.#open.size;
  }

  /** An account for a new message of at most `claim` bytes (capped at the budget). */
  open(claim: number): StagingAccount {
    const account = new StagingAccount(++this.#seq, Math.min(claim, this.maxBytes));
    this.#open.add(account);
    this.#countClaim(account.claim, 1);
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
    const front = this.#waiting[0];
    if ((front === undefined || front.seq > account.seq) && this.#grantable(account, bytes)) {
      this.#grant(account, bytes);
      return true;
    }
    account.pending = bytes;
    let at = this.#waiting.length;
    while (at > 0 && (this.#waiting[at - 1]?.seq ?? 0) > account.seq) at--;
    this.#waiting.splice(at, 0, account);
    this.#waits++;
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
    this.#countClaim(account.claim, -1);
  }

  #setClaim(account: StagingAccount, claim: number): void {
    this.#countClaim(account.claim, -1);
    account.claim = claim;
    this.#countClaim(claim, 1);
  }

  #countClaim(claim: number, delta: number): void {
    const count = (this.#claims.get(claim) ?? 0) + delta;
    if (count > 0) this.#claims.set(claim, count);
    else this.#claims.delete(claim);
  }

  #largestClaim(): number {
    let largest = 0;
    for (const claim of this.#claims.keys()) if (claim > largest) largest = claim;
    return largest;
  }

  #oldest(): StagingAccount | undefined {
    for (const account of this.#open) return account;
    return undefined;
  }

  #grantable(account: StagingAccount, bytes: number): boolean {
    if (this.#used + bytes > this.maxBytes) return false;
    const oldest = this.#oldest();
    if (oldest === account) return true;
    const othersHeld = this.#openHeld - (oldest?.held ?? 0);
    return this.#largestClaim() + othersHeld + bytes <= this.maxBytes;
  }

  #grant(account: StagingAccount, bytes: number): void {
    account.held += bytes;
    this.#used += bytes;
    this.#openHeld += bytes;
  }

  #wake(): void {
    for (;;) {
      const account = this.#waiting[0];
      if (account === undefined || !this.#grantable(account, account.pending)) return;
      this.#waiting.shift();
      this.#grant(account, account.pending);
      account.pending = 0;
      const waiter = account.waiter;
      account.waiter = undefined;
      waiter?.resolve();
    }
  }
}
