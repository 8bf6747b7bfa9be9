import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IdleDeadlines } from '../../src/gateway/websocket/idle-deadlines.js';

describe('IdleDeadlines', () => {
  it('expires waiters in order after timeoutMs, skips disarmed ones and keeps no reference to them', async () => {
    const expired: string[] = [];
    const deadlines = new IdleDeadlines<{ idleSlot: number; name: string }>(30, (waiter) => expired.push(waiter.name));
    const a = { idleSlot: -1, name: 'a' };
    const b = { idleSlot: -1, name: 'b' };
    const c = { idleSlot: -1, name: 'c' };
    deadlines.arm(a);
    deadlines.arm(b);
    deadlines.arm(b); // no-op while waiting
    deadlines.disarm(b);
    expect(b.idleSlot).toBe(-1);
    await new Promise((resolve) => setTimeout(resolve, 10));
    deadlines.arm(c);
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(expired).toEqual(['a', 'c']);
    expect([a.idleSlot, c.idleSlot]).toEqual([-1, -1]);
    // Re-armed after expiring: waits again.
    deadlines.arm(a);
    deadlines.clear();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(expired).toEqual(['a', 'c']);
    expect(a.idleSlot).toBe(-1);
  });

  it('against a model: waiters expire in the order they were armed, once, only while armed; with nobody waiting it holds no slot', () => {
    type Waiter = { idleSlot: number; name: number };
    const op = fc.oneof(
      fc.record({ kind: fc.constant('arm' as const), who: fc.integer({ min: 0, max: 7 }) }),
      fc.record({ kind: fc.constant('disarm' as const), who: fc.integer({ min: 0, max: 7 }) }),
      fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 40 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 120 }), (ops) => {
        let now = 0;
        const expired: number[] = [];
        const deadlines = new IdleDeadlines<Waiter>(30, (waiter) => expired.push(waiter.name), () => now);
        const fire = (deadlines as unknown as { fire: () => void }).fire;
        const waiters: Waiter[] = Array.from({ length: 8 }, (_, name) => ({ idleSlot: -1, name }));
        // The model: who waits, until when, in arming order.
        let model: Array<{ name: number; until: number }> = [];
        const expected: number[] = [];
        try {
          for (const step of ops) {
            if (step.kind === 'arm') {
              deadlines.arm(waiters[step.who]!);
              if (!model.some((entry) => entry.name === step.who)) model.push({ name: step.who, until: now + 30 });
            } else if (step.kind === 'disarm') {
              deadlines.disarm(waiters[step.who]!);
              model = model.filter((entry) => entry.name !== step.who);
            } else {
              now += step.ms;
              fire();
              // Expiry walks the queue in order and stops at the first deadline still ahead.
              while (model.length > 0 && model[0]!.until <= now) expected.push(model.shift()!.name);
            }
            expect(expired).toEqual(expected);
            for (const waiter of waiters) expect(waiter.idleSlot >= 0).toBe(model.some((entry) => entry.name === waiter.name));
            if (model.length === 0) expect((deadlines as unknown as { waiters: unknown[] }).waiters).toHaveLength(0);
          }
        } finally {
          deadlines.clear();
        }
      }),
      { numRuns: 300 },
    );
  });
});
