import { describe, expect, it } from 'vitest';
import { MAX_OPEN_TOOLS, MAX_OPEN_TOOLS_PER_RUN, RunOrderCheck } from '../../src/client/order-check.js';
import type { AgentEvent } from '../../src/events/schema.js';
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
    expect(order.check(whole[2]!, true)).toMatchObject({ violation: { rule: 'seq_gap' } });
    expect(order.check(runEvents(1)[1]!, false)).toMatchObject({ violation: { rule: 'started_first' } });
  });

  it('a run dropped from checking by the bound on tracked runs is not reported as started mid-way later', () => {
    const order = new RunOrderCheck(false);
    const first = runEvents(1);
    expect(order.check(first[0]!)).toBeUndefined();
    for (let i = 0; i < 10_000; i++) expect(order.check(runEvents(0)[0]!)).toBeUndefined();
    expect(order.check(first[1]!)).toBeUndefined();
    expect(order.check(first[2]!)).toBeUndefined();
  });

  it('bounds the open tool calls it tracks: past 10,000 in one run (or 100,000 in all) the run is reported once and no longer checked', () => {
    const order = new RunOrderCheck(false);
    const [started] = runEvents(0);
    const tool = (run: AgentEvent, seq: number, type = 'tool_executing', callId = `call-${seq}`): AgentEvent =>
      ({ ...run, id: `${run.runId}-${seq}`, seq, type, data: { toolCallId: callId, tool: 'x', args: {}, pending: { requestId: `q${seq}`, kind: 'approval', timeoutMs: 1 } } }) as unknown as AgentEvent;
    expect(order.check(started!)).toBeUndefined();
    let seq = 1;
    for (let i = 0; i < MAX_OPEN_TOOLS_PER_RUN; i++) expect(order.check(tool(started!, ++seq))).toBeUndefined();
    expect(order.check(tool(started!, ++seq))).toMatchObject({ stopped: { runId: started!.runId, openTools: MAX_OPEN_TOOLS_PER_RUN + 1 } });
    // Dropped from checking (its state freed): later events of the run are neither tracked nor reported.
    for (let i = 0; i < 100; i++) expect(order.check(tool(started!, ++seq))).toBeUndefined();
    expect(order.check(tool(started!, 2, 'tool_completed', 'call-2'))).toBeUndefined();
    // Closed calls do not count: a run opening and closing calls forever stays checked.
    const [other] = runEvents(0);
    expect(order.check(other!)).toBeUndefined();
    let s2 = 1;
    for (let i = 0; i < MAX_OPEN_TOOLS_PER_RUN * 2; i++) {
      s2++;
      expect(order.check(tool(other!, s2, 'tool_executing', `c${i}`))).toBeUndefined();
      s2++;
      expect(order.check(tool(other!, s2, 'tool_completed', `c${i}`))).toBeUndefined();
    }
    expect(order.check(tool(other!, s2 + 2))).toMatchObject({ violation: { rule: 'seq_gap' } });
    expect(MAX_OPEN_TOOLS).toBeGreaterThan(MAX_OPEN_TOOLS_PER_RUN);
  });

  it('the bound across runs: many runs with open calls stop the run that opens one too many', () => {
    const order = new RunOrderCheck(false);
    const perRun = MAX_OPEN_TOOLS / 20;
    const results: unknown[] = [];
    for (let r = 0; r <= 20; r++) {
      const [started] = runEvents(0);
      order.check(started!);
      for (let i = 0; i < perRun; i++) {
        const result = order.check({ ...started!, id: `${r}-${i}`, seq: i + 2, type: 'tool_executing', data: { toolCallId: `c${i}`, tool: 'x', args: {} } } as unknown as AgentEvent);
        if (result) results.push(result);
      }
    }
    expect(results).toMatchObject([{ stopped: { openTools: 1 } }]);
  });
});
