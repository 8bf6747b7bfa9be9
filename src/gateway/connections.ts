import { GatewayError } from '../errors/index.js';
import type { Principal } from './auth.js';
import type { UserLimitPolicy } from './options.js';
import type { DisconnectReason } from './stats.js';

/** What the tracker needs of a connection or stream of any surface. */
export interface TrackedConnection {
  readonly userId: string;
  /**
   * Ends it for `reason` (`user_limit`, `revoked`, `token_expired`, `shutdown`): SSE writes its
   * final `close` event; a WebSocket closes with the matching code. It must call
   * `ConnectionTracker.remove` once it no longer counts (now or when the socket is gone).
   */
  close(reason: DisconnectReason): void;
}

export interface ConnectionLimits {
  maxConnectionsPerUser: number;
  maxConnections: number;
  userLimitPolicy: UserLimitPolicy;
}

/** Longest delay `setTimeout` takes; longer expiries are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Open connections of one surface by user (oldest first): the per-user and total limits with the
 * overflow policy, requests still authenticating (they count toward `maxConnections`), revocation
 * and expiry. One instance per surface; every surface uses it the same way:
 *
 * ```ts
 * const done = tracker.authenticating();            // throws SERVER_AT_CAPACITY (503)
 * try { principal = await authenticateRequest(…) } finally { done() }
 * tracker.admit(connection, principal);             // throws TOO_MANY_CONNECTIONS (429) / SERVER_AT_CAPACITY
 * … connection ends → tracker.remove(connection)
 * ```
 */
export class ConnectionTracker<C extends TrackedConnection> {
  /** A user's connections, oldest first: the connection itself while it is the user's only one (most users have one), an array from the second. */
  private readonly byUser = new Map<string, C | C[]>();
  private readonly expiries = new Map<C, ReturnType<typeof setTimeout>>();
  private count = 0;
  private pending = 0;

  constructor(
    private readonly limits: ConnectionLimits,
    private readonly now: () => number = Date.now,
  ) {}

  /** Open connections. */
  get size(): number {
    return this.count;
  }

  /** Requests being authenticated. */
  get authenticatingCount(): number {
    return this.pending;
  }

  /** Users with at least one open connection. */
  get users(): number {
    return this.byUser.size;
  }

  /** A user's open connections, oldest first. */
  of(userId: string): readonly C[] {
    const held = this.byUser.get(userId);
    return held === undefined ? [] : Array.isArray(held) ? held : [held];
  }

  *all(): IterableIterator<C> {
    for (const held of this.byUser.values()) {
      if (Array.isArray(held)) yield* held;
      else yield held;
    }
  }

  /** Calls `visit` for every open connection (cheaper than iterating `all()`: gauges read it often). */
  forEach(visit: (connection: C) => void): void {
    for (const held of this.byUser.values()) {
      if (!Array.isArray(held)) visit(held);
      else for (let i = 0; i < held.length; i++) visit(held[i]!);
    }
  }

  /** Counts a request being authenticated; returns its release (idempotent). Throws `SERVER_AT_CAPACITY` when full. */
  authenticating(): () => void {
    this.checkCapacity(0);
    this.pending++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.pending--;
    };
  }

  /**
   * Registers an authenticated connection. Past `maxConnectionsPerUser`, `close-oldest` closes
   * the user's oldest (reason `user_limit`) and `refuse-newest` throws `TOO_MANY_CONNECTIONS`.
   * Past `maxConnections` it throws `SERVER_AT_CAPACITY`. Arms the principal's expiry.
   */
  admit(connection: C, principal: Principal): void {
    const existing = this.of(connection.userId);
    if (existing.length >= this.limits.maxConnectionsPerUser) {
      if (this.limits.userLimitPolicy === 'refuse-newest') {
        throw new GatewayError('TOO_MANY_CONNECTIONS', `At most ${this.limits.maxConnectionsPerUser} open connections per user`, {
          headers: { 'Retry-After': '5' },
        });
      }
    } else {
      this.checkCapacity(0);
    }
    if (existing.length >= this.limits.maxConnectionsPerUser) {
      for (const oldest of existing.slice(0, existing.length - this.limits.maxConnectionsPerUser + 1)) {
        this.remove(oldest);
        oldest.close('user_limit');
      }
    }
    const held = this.byUser.get(connection.userId);
    if (held === undefined) this.byUser.set(connection.userId, connection);
    else if (Array.isArray(held)) held.push(connection);
    else this.byUser.set(connection.userId, [held, connection]);
    this.count++;
    if (principal.expiresAt !== undefined) this.armExpiry(connection, principal.expiresAt);
  }

  /** Forgets a connection (idempotent): it no longer counts toward limits. */
  remove(connection: C): void {
    const timer = this.expiries.get(connection);
    if (timer !== undefined) {
      clearTimeout(timer);
      this.expiries.delete(connection);
    }
    const held = this.byUser.get(connection.userId);
    if (held === connection) {
      this.byUser.delete(connection.userId);
    } else {
      const index = Array.isArray(held) ? held.indexOf(connection) : -1;
      if (!Array.isArray(held) || index < 0) return;
      held.splice(index, 1);
      if (held.length === 0) this.byUser.delete(connection.userId);
    }
    this.count--;
  }

  /** Closes every open connection of `userId` (reason `revoked`); returns how many. */
  revoke(userId: string): number {
    const connections = [...this.of(userId)];
    for (const connection of connections) {
      this.remove(connection);
      connection.close('revoked');
    }
    return connections.length;
  }

  /** Closes every open connection (reason `shutdown`). */
  closeAll(reason: DisconnectReason = 'shutdown'): void {
    for (const connection of [...this.all()]) {
      this.remove(connection);
      connection.close(reason);
    }
  }

  private checkCapacity(extra: number): void {
    if (this.count + this.pending + extra >= this.limits.maxConnections) {
      throw new GatewayError('SERVER_AT_CAPACITY', `The server holds ${this.limits.maxConnections} connections; retry later`, {
        headers: { 'Retry-After': '5' },
      });
    }
  }

  private armExpiry(connection: C, expiresAt: number): void {
    const delay = expiresAt - this.now();
    const timer = setTimeout(
      () => {
        this.expiries.delete(connection);
        if (expiresAt - this.now() > 0) return this.armExpiry(connection, expiresAt);
        if (!this.of(connection.userId).includes(connection)) return;
        this.remove(connection);
        connection.close('token_expired');
      },
      Math.max(0, Math.min(delay, MAX_TIMER_MS)),
    );
    (timer as { unref?: () => void }).unref?.();
    this.expiries.set(connection, timer);
  }
}
