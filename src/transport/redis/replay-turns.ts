import { TransportError } from '../../errors/index.js';

/** One user's replays: how many hold a turn, and who waits for one (first come, first served). */
interface UserTurns {
  active: number;
  readonly waiting: Array<{ grant: () => void; refuse: (error: Error) => void }>;
}

/**
 * Turns at reading a replay from Redis, per user: at most `perUser` at once, further ones wait in
 * order, at most `maxWaiting` of them (one more is refused with `TOO_MANY_REPLAYS`, retryable).
 * A user with nothing under way has no record: the map holds only users with a turn or a wait.
 */
export class ReplayTurns {
  private readonly users = new Map<string, UserTurns>();
  /** Replays refused because their user had `maxWaiting` waiting already. */
  refused = 0;
  /** Replays that had to wait for a turn. */
  waited = 0;

  constructor(
    private readonly perUser: number,
    private readonly maxWaiting: number,
  ) {}

  /** Replays holding a turn / waiting for one, over every user. */
  get counts(): { active: number; waiting: number } {
    let active = 0;
    let waiting = 0;
    for (const turns of this.users.values()) {
      active += turns.active;
      waiting += turns.waiting.length;
    }
    return { active, waiting };
  }

  /** Resolves with the function that gives the turn back (once) when the user may read. */
  async take(userId: string): Promise<() => void> {
    let turns = this.users.get(userId);
    if (!turns) {
      turns = { active: 0, waiting: [] };
      this.users.set(userId, turns);
    }
    const own = turns;
    if (own.active < this.perUser) {
      own.active++;
    } else {
      if (own.waiting.length >= this.maxWaiting) {
        this.refused++;
        throw new TransportError(
          `Too many replays of one user under way (${this.perUser} reading, ${this.maxWaiting} waiting); retry shortly`,
          { code: 'TOO_MANY_REPLAYS' },
        );
      }
      this.waited++;
      // The turn is handed over by the one giving it back: `active` stays counted.
      await new Promise<void>((grant, refuse) => own.waiting.push({ grant, refuse }));
    }
    let given = false;
    return () => {
      if (given) return;
      given = true;
      const next = own.waiting.shift();
      if (next) {
        next.grant();
        return;
      }
      own.active--;
      if (own.active === 0 && this.users.get(userId) === own) this.users.delete(userId);
    };
  }

  /** Refuses every waiting replay (the log is closing). */
  refuseAll(error: Error): void {
    for (const [userId, turns] of this.users) {
      for (const waiter of turns.waiting.splice(0)) waiter.refuse(error);
      if (turns.active === 0) this.users.delete(userId);
    }
  }
}
