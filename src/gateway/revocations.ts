import { AuthError } from '../errors/index.js';

/** The refusal of a request whose user was revoked while it was being admitted (401 `REVOKED`). */
export function revokedError(): AuthError {
  return new AuthError("The user's access was revoked", { code: 'REVOKED' });
}

/**
 * One request between the start of its authentication and its admission (its stream registered,
 * its run started, its answer given). `check(userId)` throws `AuthError` `REVOKED` when `userId`
 * was revoked on the surface since the watch began; `admit(userId)` checks and ends it.
 */
export interface RevocationWatch {
  /** Throws `REVOKED` (401) when `userId` was revoked since the watch began. */
  check(userId: string): void;
  /** `check`, then `end`: the request is admitted, later revocations are the surface's to enforce on what it holds. */
  admit(userId: string): void;
  /** Stops watching (idempotent). Every watch must end, whatever happened to the request. */
  end(): void;
}

/**
 * The revocations a surface's pending requests must see. `revoke(userId)` on a surface closes
 * what the surface holds for that user; a request still being admitted holds nothing yet (its
 * `authenticate` hook is answering, its body is arriving, its log subscription is being set up),
 * so the surface records the revocation here and the request is refused with `REVOKED` at its
 * next check (`RevocationWatch.check`): after the hook, after the body, and when it is admitted.
 *
 * One instance per surface (WebSocket handshakes, SSE, AG-UI, useChat, run endpoints, answer
 * endpoint). A revocation is kept exactly as long as a request that began before it is pending:
 * revocations only matter to watches older than them, so the map is pruned up to the oldest
 * pending watch, and emptied when none is pending. Its size is bounded by the users revoked while
 * the oldest pending request was being admitted (itself bounded by the auth and body timeouts).
 */
export class Revocations {
  /** user → sequence number of their latest revocation, in order of that number. */
  private readonly revoked = new Map<string, number>();
  /** Pending watches, oldest (smallest `since`) first: a `Set` keeps insertion order. */
  private readonly pending = new Set<Watch>();
  private seq = 0;

  /** Requests being admitted now. */
  get size(): number {
    return this.pending.size;
  }

  /** Starts watching for a request about to authenticate. End it (`end`/`admit`) on every path. */
  watch(): RevocationWatch {
    const watch = new Watch(this, this.seq);
    this.pending.add(watch);
    return watch;
  }

  /** Runs `work` with a watch that ends when it settles, however it settles. */
  async watching<T>(work: (watch: RevocationWatch) => Promise<T>): Promise<T> {
    const watch = this.watch();
    try {
      return await work(watch);
    } finally {
      watch.end();
    }
  }

  /** Requests of `userId` pending now are refused with `REVOKED` at their next check. */
  revoke(userId: string): void {
    if (this.pending.size === 0) return;
    // Re-inserted at the end: the map stays in order of sequence numbers.
    this.revoked.delete(userId);
    this.revoked.set(userId, ++this.seq);
  }

  /** @internal Whether `userId` was revoked after sequence number `since`. */
  revokedSince(userId: string, since: number): boolean {
    return (this.revoked.get(userId) ?? 0) > since;
  }

  /** @internal */
  ended(watch: Watch): void {
    if (!this.pending.delete(watch)) return;
    const oldest = this.pending.values().next();
    if (oldest.done) {
      this.revoked.clear();
      return;
    }
    // A revocation at or before the oldest pending watch's start can refuse nobody.
    const since = oldest.value.since;
    for (const [user, seq] of this.revoked) {
      if (seq > since) break;
      this.revoked.delete(user);
    }
  }
}

class Watch implements RevocationWatch {
  private done = false;

  constructor(
    private readonly owner: Revocations,
    readonly since: number,
  ) {}

  check(userId: string): void {
    if (this.owner.revokedSince(userId, this.since)) throw revokedError();
  }

  admit(userId: string): void {
    try {
      this.check(userId);
    } finally {
      this.end();
    }
  }

  end(): void {
    if (this.done) return;
    this.done = true;
    this.owner.ended(this);
  }
}
