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
});
