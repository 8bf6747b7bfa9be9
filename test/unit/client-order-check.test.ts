import { describe, expect, it } from 'vitest';
import { RunOrderCheck } from '../../src/client/order-check.js';
import { runEvents } from '../helpers/ws-fake-socket.js';

describe('RunOrderCheck', () => {
  it('counts the replay announced by subscribed, then checks live events again', () => {
    const order = new RunOrderCheck(false);
    order.subscribed(2);
    expect([order.frameArrived(), order.frameArrived(), order.frameArrived()]).toEqual([true, true, false]);
    for (const bad of [-1, 1.5, NaN, '3', null, undefined]) {
      order.subscribed(bad);
      expect(order.frameArrived()).toBe(false);
    }
  });

  it('a run seen from its start in a replay is checked; one first seen mid-way there is not, live it is', () => {
    const order = new RunOrderCheck(false);
    const mid = runEvents(3);
    const whole = runEvents(3);
    expect(order.check(mid[2]!, true)).toBeUndefined();
    expect(order.check(mid[4]!, false)).toBeUndefined(); // still unchecked: it was joined mid-way
    expect(order.check(whole[0]!, true)).toBeUndefined();
    expect(order.check(whole[2]!, true)).toMatchObject({ rule: 'seq_gap' });
    expect(order.check(runEvents(1)[1]!, false)).toMatchObject({ rule: 'started_first' });
  });

  it('a run dropped from checking by the bound on tracked runs is not reported as started mid-way later', () => {
    const order = new RunOrderCheck(false);
    const first = runEvents(1);
    expect(order.check(first[0]!)).toBeUndefined();
    for (let i = 0; i < 10_000; i++) expect(order.check(runEvents(0)[0]!)).toBeUndefined();
    expect(order.check(first[1]!)).toBeUndefined();
    expect(order.check(first[2]!)).toBeUndefined();
  });
});
