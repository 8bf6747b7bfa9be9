import { GatewayError } from '../errors/index.js';

/**
 * Admission of surfaces that start runs: runs in progress per user and in total. Take a slot
 * only after the request's body has been read and validated (a slow or invalid body must not
 * hold a slot); `acquire` throws `GatewayError` `TOO_MANY_RUNS` (429) past either limit.
 */
export class RunSlots {
  private readonly perUser = new Map<string, number>();
  private held = 0;

  constructor(
    private readonly maxRunsPerUser: number,
    private readonly maxRuns: number,
  ) {}

  /** Users holding at least one slot. */
  get users(): number {
    return this.perUser.size;
  }

  /** Slots held in total. */
  get size(): number {
    return this.held;
  }

  /** Takes a slot for `userId`; returns its release (idempotent). */
  acquire(userId: string): () => void {
    const mine = this.perUser.get(userId) ?? 0;
    if (mine >= this.maxRunsPerUser) {
      throw new GatewayError('TOO_MANY_RUNS', `At most ${this.maxRunsPerUser} runs per user may be in progress at once`, {
        headers: { 'Retry-After': '5' },
      });
    }
    if (this.held >= this.maxRuns) {
      throw new GatewayError('TOO_MANY_RUNS', 'Too many runs are in progress; retry later', { headers: { 'Retry-After': '5' } });
    }
    this.perUser.set(userId, mine + 1);
    this.held++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held--;
      const left = (this.perUser.get(userId) ?? 1) - 1;
      if (left > 0) this.perUser.set(userId, left);
      else this.perUser.delete(userId);
    };
  }
}
