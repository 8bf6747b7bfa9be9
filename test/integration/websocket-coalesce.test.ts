/**
 * `coalesceUnderLoad`: while the event loop is saturated, a connection written by the previous
 * flush waits one more tick, so two ticks of its frames go out as one message. Below saturation
 * (and with the option off) every tick's frames are written that tick. Either way every event
 * arrives once, in order, to its own user only. A real gateway and real ws clients over loopback;
 * saturation is made by a producer that keeps the loop busy between its ticks.
 */
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import type { AgentEvent } from '../../src/index.js';
import { RunBuilder } from '../attack/hotpath-peer.js';
import { RawClient, startGateway, type GatewaySetupOptions } from '../helpers/ws-harness.js';

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

const TICKS = 120;

async function setup(options: GatewaySetupOptions = {}) {
  const stack = await startGateway({ heartbeatIntervalMs: 0, ...options });
  stops.push(() => stack.stop());
  const users = ['ana', 'ben'];
  const clients: RawClient[] = [];
  for (const user of users) {
    const client = await RawClient.open(stack.url, user);
    client.subscribe(`${user}-thread`);
    await client.waitFor(() => client.ofType('subscribed').length === 1, 'subscribed');
    clients.push(client);
    stops.push(async () => client.close());
  }
  const runs = users.map((user) => new RunBuilder(user, `${user}-thread`));
  return { stack, clients, runs };
}

/** One event per run per tick for `TICKS` ticks; `busyMs` of synchronous work in each tick (0: an idle loop, paced by a timer). */
async function produce(send: (event: AgentEvent) => Promise<void>, runs: RunBuilder[], busyMs: number): Promise<AgentEvent[][]> {
  const sent = runs.map(() => [] as AgentEvent[]);
  for (let tick = 0; tick < TICKS; tick++) {
    await new Promise<void>((resolve) => (busyMs > 0 ? setImmediate(resolve) : setTimeout(resolve, 2)));
    const end = performance.now() + busyMs;
    while (performance.now() < end) {
      // The rest of a busy server's tick.
    }
    runs.forEach((run, i) => {
      const event = run.thinking(`tick ${tick}`);
      sent[i]!.push(event);
      void send(event);
    });
  }
  return sent;
}

/** The messages that carried events (a batch: an array of frames), and the events they carried. */
function eventMessages(client: RawClient): { messages: number; events: AgentEvent[] } {
  const withEvents = client.messages.filter((message) => (Array.isArray(message) ? message : [message]).some((frame: { type?: string }) => frame.type === 'event'));
  return { messages: withEvents.length, events: client.events() };
}

async function received(clients: RawClient[], sent: AgentEvent[][]) {
  await Promise.all(clients.map((client, i) => client.waitFor(() => client.events().length >= sent[i]!.length, `${sent[i]!.length} events`)));
  return clients.map((client, i) => {
    const got = eventMessages(client);
    // Exactly what was sent to this user, once each, in order; nothing of the other user.
    expect(got.events.map((event) => event.id)).toEqual(sent[i]!.map((event) => event.id));
    expect(got.events.every((event) => event.userId === sent[i]![0]!.userId)).toBe(true);
    return got.messages;
  });
}

describe('coalesceUnderLoad', () => {
  it('under a saturated loop, writes a connection at most every other tick: fewer messages than ticks, every event once and in order', async () => {
    const { stack, clients, runs } = await setup();
    const sent = await produce((event) => stack.gateway.send(event), runs, 6);
    const messages = await received(clients, sent);
    // Saturation is measured over 100 ms windows: after the first, the connections are written every other tick.
    for (const count of messages) {
      expect(count).toBeLessThan(TICKS * 0.75);
      expect(count).toBeGreaterThanOrEqual(TICKS / 2);
    }
  });

  it('off: every tick is written in that tick, however busy the loop', async () => {
    const { stack, clients, runs } = await setup({ coalesceUnderLoad: false });
    const sent = await produce((event) => stack.gateway.send(event), runs, 6);
    expect(await received(clients, sent)).toEqual([TICKS, TICKS]);
  });

  it('below saturation (an idle loop between ticks), every tick is written in that tick', async () => {
    const { stack, clients, runs } = await setup();
    const sent = await produce((event) => stack.gateway.send(event), runs, 0);
    expect(await received(clients, sent)).toEqual([TICKS, TICKS]);
  });

  it('is checked as a boolean', async () => {
    await expect(startGateway({ coalesceUnderLoad: 'yes' as unknown as boolean })).rejects.toThrow(/coalesceUnderLoad/);
  });
});
