import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ExpiryQueue, type Expiring } from '../../src/transport/websocket/expiry-queue.js';

interface Item extends Expiring {
  name: number;
}

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

/** The heap's invariants (read from its private array: the order of expiry depends on them). */
function checkHeap(queue: ExpiryQueue<Item>): void {
  const heap = (queue as unknown as { heap: Item[] }).heap;
  for (let index = 0; index < heap.length; index++) {
    const item = heap[index]!;
    if (item.expiryIndex !== index) throw new Error(`item ${item.name} at ${index} says ${item.expiryIndex}`);
    if (index > 0 && heap[(index - 1) >> 1]!.expiresAt > item.expiresAt) throw new Error(`heap order broken at ${index}`);
  }
}

describe('ExpiryQueue', () => {
  it('expires every item exactly when its deadline passes, never a removed one, whatever the order of adds and removes (property)', () => {
    // Mostly adds and removes, so heaps grow large and removals land in every subtree.
    const op = fc.oneof(
      { weight: 6, arbitrary: fc.record({ kind: fc.constant('add' as const), inMs: fc.integer({ min: 0, max: 5_000 }) }) },
      { weight: 3, arbitrary: fc.record({ kind: fc.constant('remove' as const), pick: fc.nat() }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 300 }) }) },
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 400, size: 'max' }), (ops) => {
        vi.setSystemTime(1_000_000);
        const expired: Array<{ item: Item; at: number }> = [];
        const queue = new ExpiryQueue<Item>(
          (item) => expired.push({ item, at: Date.now() }),
          () => undefined,
        );
        const live = new Map<number, Item>();
        let next = 0;
        for (const step of ops) {
          if (step.kind === 'add') {
            const item: Item = { name: next++, expiresAt: Date.now() + step.inMs, expiryIndex: -1 };
            live.set(item.name, item);
            queue.add(item);
          } else if (step.kind === 'remove') {
            const names = [...live.keys()];
            if (names.length === 0) continue;
            const item = live.get(names[step.pick % names.length]!)!;
            live.delete(item.name);
            queue.remove(item);
          } else {
            vi.advanceTimersByTime(step.ms);
          }
          for (const { item } of expired) live.delete(item.name);
          checkHeap(queue);
        }
        vi.advanceTimersByTime(10_000);
        for (const { item } of expired) live.delete(item.name);
        // Everything still queued expired, at its deadline exactly (fake time runs timer by timer: not
        // before, and not late either), removed items never.
        expect(live.size).toBe(0);
        expect(queue.size).toBe(0);
        for (const { item, at } of expired) {
          expect(at).toBe(item.expiresAt);
          expect(item.expiryIndex).toBe(-1);
        }
        expect(new Set(expired.map((e) => e.item.name)).size).toBe(expired.length);
        expect(vi.getTimerCount()).toBe(0);
      }),
      { numRuns: 150 },
    );
  });

  it('one timer for any number of items; a deadline beyond the longest timeout is re-armed, not fired early', () => {
    const expired: Item[] = [];
    const queue = new ExpiryQueue<Item>((item) => expired.push(item), () => undefined);
    for (let i = 0; i < 1_000; i++) queue.add({ name: i, expiresAt: Date.now() + 1_000 + i, expiryIndex: -1 });
    expect(vi.getTimerCount()).toBe(1);
    const far: Item = { name: -1, expiresAt: Date.now() + 40 * 24 * 3_600_000, expiryIndex: -1 }; // 40 days > 2^31 ms
    queue.add(far);
    vi.advanceTimersByTime(2_000);
    expect(expired).toHaveLength(1_000);
    vi.advanceTimersByTime(30 * 24 * 3_600_000);
    expect(expired).toHaveLength(1_000);
    vi.advanceTimersByTime(10 * 24 * 3_600_000);
    expect(expired.at(-1)).toBe(far);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('an onExpired that throws is reported and the other items still expire; clear() stops the timer', () => {
    const errors: unknown[] = [];
    const expired: number[] = [];
    const queue = new ExpiryQueue<Item>(
      (item) => {
        expired.push(item.name);
        if (item.name === 1) throw new Error('boom');
      },
      (error) => errors.push(error),
    );
    for (let i = 0; i < 3; i++) queue.add({ name: i, expiresAt: Date.now() + 10, expiryIndex: -1 });
    vi.advanceTimersByTime(10);
    expect(expired.sort()).toEqual([0, 1, 2]);
    expect(errors).toHaveLength(1);
    queue.add({ name: 9, expiresAt: Date.now() + 10, expiryIndex: -1 });
    queue.clear();
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(100);
    expect(expired).toHaveLength(3);
    // Items without a finite deadline are not queued.
    queue.add({ name: 10, expiresAt: Infinity, expiryIndex: -1 });
    expect(queue.size).toBe(0);
  });
});
