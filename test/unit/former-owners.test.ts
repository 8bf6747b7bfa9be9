import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FormerOwners } from '../../src/transport/memory/former-owners.js';

/**
 * The rule, written plainly: records in dropping order; past capacity, the oldest record of a user
 * holding the most goes; a record is admitted only when that forgets nobody's `keptPerUser` newest.
 */
class Model {
  readonly records: Array<{ threadId: string; owner: string; lastActivity: number }> = [];
  readonly evictedFrom: Array<Set<string>> = [];
  constructor(
    private readonly capacity: number,
    private readonly keptPerUser: number,
  ) {}
  count(owner: string): number {
    return this.records.filter((record) => record.owner === owner).length;
  }
  most(): number {
    return Math.max(0, ...this.records.map((record) => this.count(record.owner)));
  }
  admits(owner: string, expiredAt: number): boolean {
    if (this.records.length < this.capacity) return true;
    while (this.records.length > 0 && this.records[0]!.lastActivity <= expiredAt) this.records.shift();
    if (this.records.length < this.capacity || this.most() > this.keptPerUser) return true;
    return this.count(owner) >= this.keptPerUser;
  }
  set(threadId: string, owner: string, lastActivity: number): void {
    this.delete(threadId);
    this.records.push({ threadId, owner, lastActivity });
    if (this.records.length > this.capacity) {
      const most = this.most();
      this.evictedFrom.push(new Set(this.records.filter((record) => this.count(record.owner) === most).map((record) => record.owner)));
    }
  }
  delete(threadId: string): void {
    const at = this.records.findIndex((record) => record.threadId === threadId);
    if (at >= 0) this.records.splice(at, 1);
  }
}

describe('FormerOwners: bounded owner records that no number of accounts can make forget a user’s newest', () => {
  it('agrees with the model on admits, get and size; an eviction takes the oldest record of a user holding the most, and never one of a user holding no more than keptPerUser', () => {
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('keep' as const),
        thread: fc.integer({ min: 0, max: 30 }),
        owner: fc.constantFrom('alice', 'bob', 'mallory', 'mel', 'max', 'sybil-1', 'sybil-2', 'sybil-3'),
        age: fc.integer({ min: 0, max: 3 }),
        expiredBefore: fc.integer({ min: 0, max: 5 }),
      }),
      fc.record({ kind: fc.constant('delete' as const), thread: fc.integer({ min: 0, max: 30 }) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 4 }), fc.array(op, { maxLength: 200 }), (capacity, keptPerUser, ops) => {
        const owners = new FormerOwners(capacity, keptPerUser);
        const model = new Model(capacity, keptPerUser);
        let clock = 10;
        for (const step of ops) {
          const threadId = `t${step.thread}`;
          if (step.kind === 'delete') {
            owners.delete(threadId);
            model.delete(threadId);
            continue;
          }
          // What the memory log does: keep a record only once admitted.
          clock++;
          const expiredAt = clock - 10 + step.expiredBefore;
          const admitted = owners.admits(step.owner, expiredAt);
          expect(admitted).toBe(model.admits(step.owner, expiredAt));
          expect(owners.size).toBe(model.records.length);
          if (!admitted) continue;
          owners.set(threadId, step.owner, clock - step.age);
          model.set(threadId, step.owner, clock - step.age);
          if (model.records.length > capacity) {
            // Which record went: the one the model still has and the implementation does not.
            const gone = model.records.filter((record) => owners.get(record.threadId) === undefined);
            expect(gone).toHaveLength(1);
            const victim = gone[0]!;
            expect(model.evictedFrom.at(-1)!.has(victim.owner)).toBe(true);
            expect(model.count(victim.owner)).toBeGreaterThan(keptPerUser);
            // The oldest of that user's records (the model keeps dropping order).
            expect(model.records.find((record) => record.owner === victim.owner)!.threadId).toBe(victim.threadId);
            model.delete(victim.threadId);
          }
          expect(owners.size).toBe(model.records.length);
          expect(owners.size).toBeLessThanOrEqual(capacity);
          for (const record of model.records) expect(owners.get(record.threadId)).toEqual({ owner: record.owner, lastActivity: record.lastActivity });
        }
      }),
      { numRuns: 500 },
    );
  });

  it('a flood by one user (or several) only ever evicts their own records', () => {
    const owners = new FormerOwners(40, 16);
    owners.set('alice-thread', 'alice', 1);
    for (let i = 0; i < 10_000; i++) {
      const owner = `mallory-${i % 2}`;
      expect(owners.admits(owner, 0)).toBe(true);
      owners.set(`m-${i}`, owner, 1);
    }
    expect(owners.get('alice-thread')).toEqual({ owner: 'alice', lastActivity: 1 });
    expect(owners.size).toBe(40);
  });

  it('many one-record accounts fill it but evict nobody: past capacity a new user is not admitted until records expire', () => {
    const owners = new FormerOwners(1_000, 16);
    owners.set('alice-thread', 'alice', 5);
    for (let i = 0; i < 999; i++) owners.set(`s-${i}`, `sybil-${i}`, 10 + i);
    expect(owners.admits('sybil-next', 0)).toBe(false);
    expect(owners.get('alice-thread')?.owner).toBe('alice');
    // A user who already holds keptPerUser records makes room out of their own.
    for (let i = 0; i < 15; i++) owners.delete(`s-${i}`);
    for (let i = 0; i < 15; i++) owners.set(`a-${i}`, 'alice', 100 + i);
    expect(owners.admits('alice', 0)).toBe(true);
    owners.set('a-15', 'alice', 200);
    expect(owners.get('alice-thread')).toBeUndefined(); // alice's own oldest went
    expect(owners.get('a-15')?.owner).toBe('alice');
    // Records last active at or before the expiry instant go first, oldest first.
    expect(owners.admits('sybil-next', 30)).toBe(true);
    expect(owners.get('s-15')).toBeUndefined();
    expect(owners.get('s-20')).toBeUndefined();
    expect(owners.get('s-21')?.owner).toBe('sybil-21');
  });
});
