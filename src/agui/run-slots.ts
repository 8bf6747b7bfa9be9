import { HttpProblem } from '../protocol/http.js';

/** Counts runs per user and in total; `acquire` refuses with 429 past either limit. */
export class RunSlots {
  private readonly perUser = new Map<string, number>();
  private total = 0;

  constructor(
    private readonly maxPerUser: number,
    private readonly maxTotal: number,
  ) {}

  /** Users holding at least one slot. */
  get users(): number {
    return this.perUser.size;
  }

  /** Takes a slot for `userId` (throws `HttpProblem` 429 when none is free); returns its release (idempotent). */
  acquire(userId: string): () => void {
    const held = this.perUser.get(userId) ?? 0;
    if (held >= this.maxPerUser) {
      throw new HttpProblem(429, 'TOO_MANY_RUNS', `At most ${this.maxPerUser} runs per user may stream at once`);
    }
    if (this.total >= this.maxTotal) throw new HttpProblem(429, 'TOO_MANY_RUNS', 'Too many runs are streaming; retry later');
    this.perUser.set(userId, held + 1);
    this.total++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const left = (this.perUser.get(userId) ?? 1) - 1;
      if (left > 0) this.perUser.set(userId, left);
      else this.perUser.delete(userId);
    };
  }
}
