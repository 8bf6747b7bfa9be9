import { EventType, verifyEvents, type BaseEvent } from '@ag-ui/client';
import { EventSchema } from '@ag-ui/core/schemas';
import { from, lastValueFrom, toArray } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AgentBridge, MemoryTransport, defineTool, validateLifecycle } from '../../src/index.js';
import { createAguiHandler, type AguiHandler } from '../../src/agui/index.js';
import { ScriptedAgent, type Step } from '../helpers/agents.js';
import { Exchange, post, startSurface, stepsFrom, surfaceAuthenticate, type Frame, type Mount, type SurfaceFixture } from '../helpers/run-surfaces.js';

/**
 * AG-UI streams are read from the log, so they resume: every frame carries an `id:` (the log
 * cursor on an event's last frame, `<cursor> <index>` on the others), and
 * `GET ?threadId&runId` with `Last-Event-ID` continues after exactly that frame. Checked by
 * cutting a stream after every frame and comparing the rebuilt run with the uninterrupted one,
 * through @ag-ui/client's verifier and @ag-ui/core's schema.
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const RICH: Step[] = [
  { think: 'Looking things up' },
  { think: 'second thought of the streak' },
  { tool: 'echo', args: { text: 'hello' } },
  { think: '' },
  { tool: 'boom', args: {}, catchError: true },
  { tool: 'echo', args: { text: 'world' } },
  { think: 'done' },
];

const dataOf = (frames: readonly Frame[]) => frames.map((frame) => JSON.parse(frame.data) as BaseEvent);

/** The client's pipeline: every frame valid for the AG-UI schema, the sequence accepted by the verifier. */
async function verified(frames: readonly Frame[]): Promise<BaseEvent[]> {
  const events = dataOf(frames);
  for (const event of events) expect(EventSchema.safeParse(event).error).toBeUndefined();
  return lastValueFrom(from(events).pipe(verifyEvents(), toArray()));
}

function open(url: string, headers: Record<string, string> = {}): Exchange {
  const exchange = new Exchange(url, { headers: { Authorization: 'Bearer tok-alice', ...headers } });
  cleanups.push(() => exchange.destroy());
  return exchange;
}

describe.each(['node', 'hono'] as Mount[])('AG-UI resume with Last-Event-ID (%s handler)', (mount) => {
  async function fixture(transport?: MemoryTransport): Promise<SurfaceFixture> {
    const surface = await startSurface('agui', mount, { abortOnDisconnect: false }, transport);
    cleanups.push(() => surface.close());
    return surface;
  }

  it('cut after every frame, resume: the rebuilt run equals the uninterrupted one, frame for frame', async () => {
    const surface = await fixture();
    const reference = post(surface, 'tok-alice', surface.body('t-rich', RICH, { runId: 'run-rich' }));
    cleanups.push(() => reference.destroy());
    expect(await reference.ended).toBe('end');
    const full = reference.frames;
    expect(full.length).toBeGreaterThan(20);
    expect((await verified(full)).at(-1)?.type).toBe(EventType.RUN_FINISHED);
    // Every frame has an id; the frames of one event share its log cursor.
    expect(full.every((frame) => frame.id !== undefined)).toBe(true);
    expect(new Set(full.map((frame) => frame.id!.split(' ')[0])).size).toBe(surface.events.length);
    // Resume from the start (no position): the whole run.
    const fromStart = open(surface.resumeUrl('t-rich', 'run-rich'));
    await fromStart.ended;
    expect(fromStart.frames).toEqual(full);

    for (let cut = 0; cut < full.length; cut++) {
      const resumed = open(surface.resumeUrl('t-rich', 'run-rich'), { 'Last-Event-ID': full[cut]!.id! });
      await resumed.ended;
      if (cut === full.length - 1) {
        // The client has everything of a finished run: 204, EventSource stops reconnecting.
        expect(resumed.status).toBe(204);
        continue;
      }
      expect([cut, resumed.status]).toEqual([cut, 200]);
      const rebuilt = [...full.slice(0, cut + 1), ...resumed.frames];
      expect(rebuilt, `cut after frame ${cut} (${JSON.parse(full[cut]!.data).type})`).toEqual(full);
      await verified(rebuilt);
    }
    // The same through ?after= (the first connection's position).
    const viaQuery = open(`${surface.resumeUrl('t-rich', 'run-rich')}&after=${encodeURIComponent(full[5]!.id!)}`);
    await viaQuery.ended;
    expect(viaQuery.frames).toEqual(full.slice(6));
  });

  it('a real drop mid-run: the run goes on, the resumed stream continues live to the end without a repeat or a loss', async () => {
    const transport = new MemoryTransport();
    const bridge = new AgentBridge({ transport });
    let approve!: () => void;
    const approval = new Promise<void>((resolve) => (approve = resolve));
    const agent = new ScriptedAgent({ bridge });
    agent.addTool(defineTool({ name: 'approval', description: 'waits for a human', parameters: z.object({}), execute: async () => (await approval, 'approved') }));
    const handler: AguiHandler = createAguiHandler({
      agent,
      log: transport,
      authenticate: surfaceAuthenticate,
      heartbeatIntervalMs: 0,
      abortOnDisconnect: false,
      toInput: (input) => stepsFrom((input.forwardedProps as { steps: unknown }).steps),
    });
    const address = await handler.listen();
    cleanups.push(async () => {
      await handler.close();
      await bridge.close();
    });
    const url = `http://127.0.0.1:${address.port}/agui`;
    const steps: Step[] = [{ think: 'asking' }, { tool: 'approval', args: {} }, { think: 'approved' }, { tool: 'echo', args: { text: 'ok' } }];
    const first = post({ url }, 'tok-alice', { threadId: 't-live', runId: 'run-live', messages: [], forwardedProps: { steps } });
    cleanups.push(() => first.destroy());
    // Read until the approval tool call started, then drop the connection: the client keeps what it
    // had dispatched up to TOOL_CALL_START (inside that event's three frames).
    await first.waitFor((x) => x.data.some((d) => d.type === EventType.TOOL_CALL_START), 'the approval tool call');
    first.destroy();
    const kept = first.frames.slice(0, first.data.findIndex((d) => d.type === EventType.TOOL_CALL_START) + 1);
    expect(kept.at(-1)?.id).toMatch(/ \d+$/); // a frame id inside an event
    const resumed = open(`${url}?threadId=t-live&runId=run-live`, { 'Last-Event-ID': kept.at(-1)!.id! });
    await resumed.waitFor((x) => x.data.some((d) => d.type === EventType.TOOL_CALL_END), 'the rest of the tool call');
    approve();
    expect(await resumed.ended).toBe('end');
    const rebuilt = [...kept, ...resumed.frames];
    const reference = open(`${url}?threadId=t-live&runId=run-live`);
    await reference.ended;
    expect(rebuilt).toEqual(reference.frames);
    expect((await verified(rebuilt)).at(-1)).toMatchObject({ type: EventType.RUN_FINISHED, outcome: { type: 'success' } });
    expect(validateLifecycle(transport.read('t-live', 'alice')).ok).toBe(true);
  });

  it('a position the log cannot honour is 409 HISTORY_GAP (forged, another thread, trimmed start, an id of another run), never a partial replay', async () => {
    const surface = await fixture(new MemoryTransport({ maxEventsPerThread: 40 }));
    const run = async (threadId: string, runId: string, steps: Step[]) => {
      const x = post(surface, 'tok-alice', surface.body(threadId, steps, { runId }));
      cleanups.push(() => x.destroy());
      await x.ended;
      expect(x.status).toBe(200);
      return x.frames;
    };
    const a = await run('t-a', 'run-a', [{ think: 'a' }, { tool: 'echo', args: { text: 'a' } }]);
    const b = await run('t-b', 'run-b', [{ think: 'b' }, { tool: 'echo', args: { text: 'b' } }]);
    const a2 = await run('t-a', 'run-a2', [{ think: 'a2' }]);
    const gap = async (runId: string, threadId: string, id: string | undefined) => {
      const x = open(surface.resumeUrl(threadId, runId), id === undefined ? {} : { 'Last-Event-ID': id });
      await x.ended;
      return [x.status, x.status === 200 ? x.frames.length : x.error.code];
    };
    expect(await gap('run-a', 't-a', 'zzz:1')).toEqual([409, 'HISTORY_GAP']);
    expect(await gap('run-a', 't-a', `${a[2]!.id!.split(':')[0]}:99999`)).toEqual([409, 'HISTORY_GAP']);
    // Thread b's cursor, sent to resume thread a.
    expect(await gap('run-a', 't-a', b[2]!.id!)).toEqual([409, 'HISTORY_GAP']);
    // A frame id of run a2, sent to resume run a.
    expect(await gap('run-a', 't-a', a2[1]!.id!)).toEqual([409, 'HISTORY_GAP']);
    // The bare cursor of run a2's last event (not "you have everything of run a"), and a frame
    // index that event never had.
    expect(a2.at(-1)!.id!).not.toContain(' ');
    expect(await gap('run-a', 't-a', a2.at(-1)!.id!)).toEqual([409, 'HISTORY_GAP']);
    expect(await gap('run-a', 't-a', `${a.at(-1)!.id!} 999`)).toEqual([409, 'HISTORY_GAP']);
    // A run whose start was trimmed away cannot be rebuilt: 409 from any position, and from the start.
    const long = await run('t-long', 'run-long', Array.from({ length: 60 }, (_, i) => ({ think: `t${i}` })));
    expect(await gap('run-long', 't-long', long.at(-10)!.id!)).toEqual([409, 'HISTORY_GAP']);
    expect(await gap('run-long', 't-long', undefined)).toEqual([409, 'HISTORY_GAP']);
    // Not a gap: no such run (404), another user's thread (403), a malformed id (400).
    expect(await gap('no-such-run', 't-a', undefined)).toEqual([404, 'NOT_FOUND']);
    const bob = new Exchange(surface.resumeUrl('t-a', 'run-a'), { headers: { Authorization: 'Bearer tok-bob' } });
    await bob.ended;
    expect([bob.status, bob.error.code]).toEqual([403, 'THREAD_FORBIDDEN']);
    for (const bad of ['a b c', 'x 99999', `${a.at(-1)!.id!} 01`]) expect(await gap('run-a', 't-a', bad)).toEqual([400, 'INVALID_CURSOR']);
    // What still resumes: run a from its start, and after its own ids.
    expect(await gap('run-a', 't-a', undefined)).toEqual([200, a.length]);
    expect(await gap('run-a', 't-a', a[1]!.id!)).toEqual([200, a.length - 2]);
    expect(surface.handler.stats().disconnects).toEqual({ history_gap: 8 });
  });

  it('POST with Last-Event-ID is refused (resume is GET); GET needs threadId and runId', async () => {
    const surface = await fixture();
    const x = post(surface, 'tok-alice', surface.body('t1', []), { headers: { 'Last-Event-ID': 'k:1' } });
    await x.ended;
    expect([x.status, x.error]).toEqual([400, { code: 'INVALID_REQUEST', field: 'Last-Event-ID', message: expect.stringContaining('resume one with GET') }]);
    for (const [query, code] of [
      ['', 'MISSING_THREAD_ID'],
      ['?threadId=t1', 'INVALID_RUN_ID'],
      ['?threadId=a/b&runId=r', 'INVALID_THREAD_ID'],
    ] as const) {
      const get = open(`${surface.url}${query}`);
      await get.ended;
      expect([get.status, get.error.code]).toEqual([400, code]);
    }
  });
});
