import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FormerOwners } from '../../src/transport/memory/former-owners.js';

/** The rule, written plainly: past capacity, the oldest record of a user holding the most goes. */
class Model {
  readonly records: Array<{ threadId: string; owner: string }> = [];
  constructor(private readonly capacity: number) {}
  set(threadId: string, owner: string): void {
    this.delete(threadId);
    this.records.push({ threadId, owner });
    if (this.records.length > this.capacity) {
      const counts = new Map<string, number>();
      for (const record of this.records) counts.set(record.owner, (counts.get(record.owner) ?? 0) + 1);
      const most = Math.max(...counts.values());
      // Any user at the top may lose one: which one is the implementation's choice; it must be at the top.
      const heaviest = new Set([...counts].filter(([, count]) => count === most).map(([owner]) => owner));
      this.lastEviction.push(heaviest);
    }
  }
  delete(threadId: string): void {
    const at = this.records.findIndex((record) => record.threadId === threadId);
    if (at >= 0) this.records.splice(at, 1);
  }
  lastEviction: Array<Set<string>> = [];
}

describe('FormerOwners: bounded owner records, evicting from the user who holds the most', () => {
  it('never holds more than its capacity; an eviction takes the oldest record of a user holding the most; get/delete agree with a model', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), thread: fc.integer({ min: 0, max: 30 }), owner: fc.constantFrom('alice', 'bob', 'mallory', 'mel', 'max') }),
      fc.record({ kind: fc.constant('delete' as const), thread: fc.integer({ min: 0, max: 30 }) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.array(op, { maxLength: 200 }), (capacity, ops) => {
        const owners = new FormerOwners(capacity);
        const model = new Model(capacity);
        for (const step of ops) {
          const threadId = `t${step.thread}`;
          if (step.kind === 'delete') {
            owners.delete(threadId);
            model.delete(threadId);
            continue;
          }
          owners.set(threadId, step.owner, 0);
          model.set(threadId, step.owner);
          if (model.records.length > capacity) {
            // Which record went: the one the model still has and the implementation does not.
            const gone = model.records.filter((record) => owners.get(record.threadId) === undefined);
            expect(gone).toHaveLength(1);
            const victim = gone[0]!;
            expect(model.lastEviction.at(-1)!.has(victim.owner)).toBe(true);
            // The oldest of that user's records (the model keeps insertion order).
            expect(model.records.find((record) => record.owner === victim.owner)!.threadId).toBe(victim.threadId);
            model.delete(victim.threadId);
          }
          expect(owners.size).toBe(model.records.length);
          expect(owners.size).toBeLessThanOrEqual(capacity);
          for (const record of model.records) expect(owners.get(record.threadId)?.owner).toBe(record.owner);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("a flood by one user (or several) never evicts the record of a user who holds fewer", () => {
    const owners = new FormerOwners(40);
    owners.set('alice-thread', 'alice', 1);
    for (let i = 0; i < 10_000; i++) owners.set(`m-${i}`, `mallory-${i % 7}`, 1);
    expect(owners.get('alice-thread')).toEqual({ owner: 'alice', lastActivity: 1 });
    expect(owners.size).toBe(40);
  });
});
