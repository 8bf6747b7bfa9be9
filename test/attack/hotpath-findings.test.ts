/**
 * Findings of the hot-path attack: each test states a documented behaviour (quoted) that today's
 * main does not have. They are plain `it`s and fail until the behaviour (or the doc) is fixed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { AgentBridge, BaseAgent, MemoryTransport, type AgentEvent, type LogListener, type SubscribeRequest, type SubscribeResult } from '../../src/index.js';
import { connect } from '../../src/client/node.js';
import { SseGateway } from '../../src/gateway/sse/index.js';
import { WebSocketGateway } from '../../src/gateway/websocket/index.js';
import { Peer, RunBuilder, authenticate, bridgedGateway } from './hotpath-peer.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});


describe("attack findings (fixed)", () => {
  // docs/gateways.md, MemoryTransport (corrected after this finding): "A repeat of a run's
  // `agent_started` or `agent_completed` (same event id) is stored once; a repeat of any other
  // event is stored and delivered again, and `agentwire/client` drops it by its id."
  it('F1: a repeated start is stored once; a repeated thought reaches agentwire/client once', async () => {
    const gateway = new WebSocketGateway({ authenticate, log: new MemoryTransport() });
    const { url } = await gateway.listen(0);
    cleanups.push(() => gateway.close());
    const run = new RunBuilder('alice', 'dup');
    const started = run.started();
    await gateway.send(started);
    await gateway.send(started);
    const thought = run.thinking('once');
    await gateway.send(thought);
    await gateway.send(thought); // a retry of the same event (e.g. after a lost reply)
    const marker = run.thinking('marker');
    await gateway.send(marker);
    const log = gateway.log as MemoryTransport;
    expect(log.read('dup', 'alice').map((e) => e.id)).toEqual([started.id, thought.id, thought.id, marker.id]);
    const client = connect(url, { token: 'u-alice', threadId: 'dup', reconnect: false });
    cleanups.push(() => client.close());
    const seen: string[] = [];
    await new Promise<void>((resolve) => {
      client.on('event', (event: AgentEvent) => {
        seen.push(event.id);
        if (event.id === marker.id) resolve();
      });
    });
    expect(seen).toEqual([started.id, thought.id, marker.id]);
  });

  // docs/gateways.md, front-end contract: "Invalid options throw `ValidationError` `INVALID_OPTION` naming the option."
  it('F2: rateLimit that is not an object (rateLimit: 5) throws INVALID_OPTION naming it, like rateLimit: { burst: 0 } does', () => {
    let thrown: unknown;
    try {
      new WebSocketGateway({ authenticate, rateLimit: 5 as never });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toMatchObject({ name: 'ValidationError', code: 'INVALID_OPTION' });
    expect(String((thrown as Error | undefined)?.message)).toContain('rateLimit');
  });

  // src/transport/types.ts (public `LogListener`, exported from `agentwire`): "Live entries, in log
  // order, appended after the subscription was made." README: a client "resumes from its cursor,
  // with no gap and no duplicate"; the client "checks each run's order".
  it('F3: an event appended from inside a log listener (re-entrant send) reaches later subscribers, WebSocket clients included, after the event that triggered it', async () => {
    const log = new MemoryTransport();
    const gateway = new WebSocketGateway({ authenticate, log });
    const { url } = await gateway.listen(0);
    cleanups.push(() => gateway.close());
    const run = new RunBuilder('alice', 'reentrant');
    const start = run.started();
    await gateway.send(start);
    const trigger = run.thinking('trigger');
    const echo = run.thinking('echo, appended when the trigger is seen');
    const after = run.thinking('after');
    // An app's own listener (audit, auto-reply…) that appends when it sees the trigger, subscribed first.
    let fired = false;
    const mine = await log.subscribe({ userId: 'alice', threadId: 'reentrant' }, {
      onEntries: (entries) => {
        for (const entry of entries) {
          if (entry.event.id === trigger.id && !fired) {
            fired = true;
            void gateway.send(echo);
          }
        }
      },
    });
    if (mine.status === 'subscribed') cleanups.push(() => mine.subscription.close());
    const raw = await Peer.open(url, 'alice');
    cleanups.push(() => raw.ws.terminate());
    await raw.subscribe('reentrant');
    const client = connect(url, { token: 'u-alice', threadId: 'reentrant', reconnect: false });
    cleanups.push(() => client.close());
    const clientErrors: string[] = [];
    const clientSeqs: number[] = [];
    client.on('error', (error) => clientErrors.push(error.code));
    client.on('agent_thinking', (event) => clientSeqs.push(event.seq));
    await new Promise<void>((resolve) => client.on('agent_started', () => resolve()));
    await gateway.send(trigger);
    await gateway.send(after);
    await raw.until(() => raw.events().length >= 4);
    expect(log.read('reentrant', 'alice').map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    // What the WebSocket connection received, in arrival order, with its cursors.
    expect(raw.events().map((f) => f.event!.seq)).toEqual([1, 2, 3, 4]);
    const offsets = raw.events().map((f) => Number(f.cursor!.slice(f.cursor!.lastIndexOf(':') + 1)));
    expect(offsets).toEqual([...offsets].sort((x, y) => x - y));
    // The real client sees them in order and reports no lifecycle violation.
    const last = after.seq;
    await new Promise<void>((resolve) => {
      const check = () => (clientSeqs.includes(last) ? resolve() : undefined);
      client.on('agent_thinking', check);
      check();
    });
    expect(clientSeqs).toEqual([2, 3, 4]);
    expect(clientErrors).toEqual([]);
  });

  // docs/gateways.md, metrics: "`bridge.metrics().activeRuns` … counts runs that have started (sent an
  // event) and whose `agent_completed` has not yet left the bridge." docs/agents.md: an integrator's
  // refused event: "other runs are not affected". A run whose agent_started was refused for good has
  // not started; an agent run refused the same way (AuthError) is not counted, an integrator's is, forever.
  it('F4: agent_started events refused for good through bridge.send (THREAD_OWNER_MISMATCH) are not counted as active runs forever', async () => {
    const gateway = new WebSocketGateway({ authenticate, log: new MemoryTransport() });
    cleanups.push(() => gateway.close());
    const bridge = new AgentBridge({ transport: gateway });
    await bridge.initialize();
    cleanups.push(() => bridge.close());
    await gateway.send(new RunBuilder('alice', 'owned-by-alice').started());
    const queues = () => (bridge as unknown as { queues: { size: number } }).queues.size;
    const before = { activeRuns: bridge.metrics().activeRuns, queues: queues() };
    const refusals: unknown[] = [];
    for (let i = 0; i < 50; i++) {
      await bridge.send(new RunBuilder('mallory', 'owned-by-alice').started()).catch((error: unknown) => refusals.push(error));
    }
    expect(bridge.metrics().failed).toBe(50);
    expect(refusals).toHaveLength(50);
    expect(refusals[0]).toMatchObject({ name: 'DeliveryError', causeCode: 'THREAD_OWNER_MISMATCH' });
    expect(bridge.metrics().activeRuns).toBe(before.activeRuns);
    expect((await bridge.health()).activeRuns).toBe(before.activeRuns);
    expect(queues()).toBe(before.queues); // no per-run queue left behind either
    // A later event of a refused run is refused by the log as before, and not counted either.
    const refused = new RunBuilder('mallory', 'owned-by-alice');
    await expect(bridge.send(refused.started())).rejects.toMatchObject({ causeCode: 'THREAD_OWNER_MISMATCH' });
    await expect(bridge.send(refused.thinking('still mine?'))).rejects.toMatchObject({ name: 'DeliveryError', causeCode: 'THREAD_OWNER_MISMATCH' });
    expect(bridge.metrics().failed).toBe(52);
    expect(bridge.metrics().activeRuns).toBe(before.activeRuns);
    expect(queues()).toBe(before.queues);
  });

  // SECURITY.md, who we defend against: "subscribing to a thread before its owner's first event …
  // A subscription or stream of another user's thread is refused (`THREAD_FORBIDDEN`, HTTP 403)."
  // The SSE gateway ends such a stream with `close` `THREAD_FORBIDDEN`; the WebSocket gateway sends
  // `SUBSCRIPTION_ENDED` ("reconnect and resume from the cursor"), so a client reconnects to be refused.
  it('F5: a WebSocket subscription made before the owner’s first event is ended with THREAD_FORBIDDEN (as SSE does), not SUBSCRIPTION_ENDED', async () => {
    const gateway = new WebSocketGateway({ authenticate, log: new MemoryTransport() });
    const { url } = await gateway.listen(0);
    cleanups.push(() => gateway.close());
    const squatter = await Peer.open(url, 'eve');
    cleanups.push(() => squatter.ws.terminate());
    expect((await squatter.subscribe('not-yet-owned')).type).toBe('subscribed');
    expect((await squatter.subscribe('eves-own')).type).toBe('subscribed');
    const client = connect(url, { token: 'u-eve', threadId: 'not-yet-owned', reconnect: { initialDelayMs: 1, maxDelayMs: 1 } });
    cleanups.push(() => client.close());
    const clientErrors: string[] = [];
    client.on('error', (error) => clientErrors.push(error.code));
    await new Promise<void>((resolve) => client.on('status', (status) => status === 'open' && resolve()));
    const owner = await Peer.open(url, 'alice');
    cleanups.push(() => owner.ws.terminate());
    expect((await owner.subscribe('not-yet-owned')).type).toBe('subscribed');
    const start = new RunBuilder('alice', 'not-yet-owned').started();
    await gateway.send(start);
    await squatter.until(() => squatter.errors().some((f) => f.threadId === 'not-yet-owned'));
    const ended = squatter.errors().find((f) => f.threadId === 'not-yet-owned');
    expect(ended).toMatchObject({ code: 'THREAD_FORBIDDEN' });
    expect(squatter.events()).toEqual([]);
    // The same frame as a subscribe to the thread refused now, and the thread is no longer followed.
    const refused = await squatter.subscribe('not-yet-owned');
    expect(Object.keys(refused).sort()).toEqual(Object.keys(ended!).sort());
    expect(refused).toEqual(ended);
    expect(squatter.errors().map((f) => f.code)).toEqual(['THREAD_FORBIDDEN', 'THREAD_FORBIDDEN']);
    // The owner gets the event; the squatter's other subscription goes on.
    await owner.until(() => owner.events().length === 1);
    const own = new RunBuilder('eve', 'eves-own').started();
    await gateway.send(own);
    await squatter.until(() => squatter.events('eves-own').length === 1);
    expect(squatter.events().map((f) => f.event!.id)).toEqual([own.id]);
    // agentwire/client treats it as terminal: it stops, it does not reconnect to be refused again.
    await new Promise<void>((resolve) => {
      const check = () => (client.status === 'closed' ? resolve() : undefined);
      client.on('status', check);
      check();
    });
    expect(clientErrors).toEqual(['THREAD_FORBIDDEN']);
    expect(client.stats.reconnects).toBe(0);
  });

  it('F5: a WebSocket subscribe answered while the owner’s first event arrives is refused with THREAD_FORBIDDEN, not SUBSCRIPTION_ENDED', async () => {
    const start = new RunBuilder('alice', 'owned-meanwhile').started();
    // A log whose owner's first event is appended between registering the subscriber and answering.
    class OwnerArrivesMeanwhile extends MemoryTransport {
      override async subscribe(request: SubscribeRequest, listener: LogListener): Promise<SubscribeResult> {
        const result = this.subscribeSync(request, listener);
        if (request.threadId === 'owned-meanwhile') this.sendSync(start);
        return result;
      }
    }
    const gateway = new WebSocketGateway({ authenticate, log: new OwnerArrivesMeanwhile() });
    const { url } = await gateway.listen(0);
    cleanups.push(() => gateway.close());
    const squatter = await Peer.open(url, 'eve');
    cleanups.push(() => squatter.ws.terminate());
    const answer = await squatter.subscribe('owned-meanwhile');
    expect(answer).toEqual({ type: 'error', code: 'THREAD_FORBIDDEN', message: 'thread "owned-meanwhile" belongs to another user', threadId: 'owned-meanwhile' });
    expect(squatter.frames.filter((f) => f.type !== 'hello')).toEqual([answer]);
  });

  // README: "each event is delivered, buffered, or reported as a `DeliveryError`, and a client that
  // reconnects resumes from its cursor, with no gap and no duplicate." docs/gateways.md: "other
  // connections are not affected". `LogListener` (public): "Live entries, in log order".
  it('F6: a log listener that throws (an app’s own subscriber) neither fails the send of an event that was stored nor keeps it from the WebSocket connections subscribed after it', async () => {
    const log = new MemoryTransport();
    const gateway = new WebSocketGateway({ authenticate, log });
    const { url } = await gateway.listen(0);
    cleanups.push(() => gateway.close());
    const run = new RunBuilder('alice', 'throwing-listener');
    await gateway.send(run.started());
    const x = run.thinking('x');
    const mine = await log.subscribe({ userId: 'alice', threadId: 'throwing-listener' }, {
      onEntries: (entries) => {
        if (entries.some((entry) => entry.event.id === x.id)) throw new Error('a bug in the app’s listener');
      },
    });
    if (mine.status === 'subscribed') cleanups.push(() => mine.subscription.close());
    const p = await Peer.open(url, 'alice');
    cleanups.push(() => p.ws.terminate());
    await p.subscribe('throwing-listener');
    const sendX = await gateway.send(x).then(() => 'resolved', (error: Error) => `rejected: ${error.message}`);
    const y = run.thinking('y');
    await gateway.send(y);
    await p.until(() => p.events().some((f) => f.event!.id === y.id));
    expect(log.read('throwing-listener', 'alice').map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(p.events().map((f) => f.event!.seq)).toEqual([1, 2, 3]);
    expect(sendX).toBe('resolved');
  });

  // SECURITY.md: "A subscription or stream of another user's thread is refused (`THREAD_FORBIDDEN`)";
  // docs/agents.md, an integrator's refused event: "other runs are not affected". Mallory's
  // agent_started for alice's thread, refused by the log, must not make the bridge take mallory for
  // the thread's owner: alice's own next run on it is delivered.
  it("F7: after mallory's agent_started for alice's thread is refused by the log (bridge.send), alice's new run on it through the same bridge is delivered", async () => {
    const { gateway, url, bridge } = await bridgedGateway(cleanups);
    // Alice's first run reached the log by another way (another process): this bridge does not know the thread.
    const first = new RunBuilder('alice', 'alices');
    await gateway.send(first.started());
    await gateway.send(first.completed());
    const alice = await Peer.open(url, 'alice');
    cleanups.push(() => alice.ws.terminate());
    expect((await alice.subscribe('alices')).type).toBe('subscribed');
    const mallory = new RunBuilder('mallory', 'alices');
    await expect(bridge.send(mallory.started())).rejects.toMatchObject({ name: 'DeliveryError', causeCode: 'THREAD_OWNER_MISMATCH' });
    expect(bridge.registry.ownerOf('alices')).toBeUndefined(); // the refused start left no trace
    expect(bridge.registry.has(mallory.runId)).toBe(false);
    // A later event of the refused run is still refused (by the log, which holds alice's thread).
    await expect(bridge.send(mallory.thinking('still mine?'))).rejects.toMatchObject({ causeCode: 'THREAD_OWNER_MISMATCH' });
    const second = new RunBuilder('alice', 'alices');
    const sent = [second.started(), second.thinking('hello again'), second.completed()];
    for (const event of sent) await expect(bridge.send(event)).resolves.toBe('delivered');
    await alice.until(() => alice.events().length >= 5);
    expect(alice.events().map((f) => f.event!.id).slice(2)).toEqual(sent.map((e) => e.id));
    expect(alice.events().every((f) => f.event!.userId === 'alice')).toBe(true);
    expect(alice.errors()).toEqual([]);
    // Isolation holds: the thread's owner is now established on this bridge by alice's delivered run.
    expect(bridge.registry.ownerOf('alices')).toBe('alice');
    await expect(bridge.send(new RunBuilder('mallory', 'alices').started())).rejects.toMatchObject({ name: 'DeliveryError' });
    await expect(bridge.send(new RunBuilder('alice', 'alices').started())).resolves.toBe('delivered');
  });

  it("F8: after mallory's agent run on alice's thread is refused (THREAD_FORBIDDEN), alice's agent run on it through the same bridge is delivered", async () => {
    const { gateway, url, bridge } = await bridgedGateway(cleanups);
    class Echo extends BaseAgent<string, string> {
      protected async execute(input: string): Promise<string> {
        await this.think(`thinking about ${input}`);
        return input;
      }
    }
    const agent = new Echo({ bridge, name: 'echo' });
    const first = new RunBuilder('alice', 'alices-agent');
    await gateway.send(first.started());
    await gateway.send(first.completed());
    const alice = await Peer.open(url, 'alice');
    cleanups.push(() => alice.ws.terminate());
    expect((await alice.subscribe('alices-agent')).type).toBe('subscribed');
    await expect(agent.run('steal', { userId: 'mallory', threadId: 'alices-agent' })).rejects.toMatchObject({ name: 'AuthError', code: 'THREAD_FORBIDDEN' });
    expect(bridge.registry.ownerOf('alices-agent')).toBeUndefined();
    const result = await agent.run('mine', { userId: 'alice', threadId: 'alices-agent' });
    expect(result).toMatchObject({ status: 'succeeded', output: 'mine' });
    await alice.until(() => alice.events().length >= 5);
    const mine = alice.events().slice(2).map((f) => f.event!);
    expect(mine.map((e) => [e.type, e.runId, e.userId])).toEqual([
      ['agent_started', result.runId, 'alice'],
      ['agent_thinking', result.runId, 'alice'],
      ['agent_completed', result.runId, 'alice'],
    ]);
    expect(alice.errors()).toEqual([]);
    // Mallory is still refused, now by the bridge itself.
    await expect(agent.run('steal', { userId: 'mallory', threadId: 'alices-agent' })).rejects.toMatchObject({ name: 'AuthError', code: 'THREAD_FORBIDDEN' });
  });

  // docs/gateways.md, SSE: "Refusals are JSON `{ "error": { "code", "message" } }` … 403: `THREAD_FORBIDDEN`";
  // SECURITY.md: "A subscription or stream of another user's thread is refused (`THREAD_FORBIDDEN`,
  // HTTP 403)". The WebSocket gateway refuses a subscribe answered while the owner's first event
  // arrives (F5); the SSE gateway left such a request hanging: 200 headers, then nothing, never an end.
  it('F9: an SSE stream answered while the owner’s first event (another user’s) arrives is refused 403 THREAD_FORBIDDEN, not left hanging', async () => {
    const start = new RunBuilder('alice', 'owned-meanwhile').started();
    class OwnerArrivesMeanwhile extends MemoryTransport {
      override async subscribe(request: SubscribeRequest, listener: LogListener): Promise<SubscribeResult> {
        const result = this.subscribeSync(request, listener);
        if (request.threadId === 'owned-meanwhile' && this.read('owned-meanwhile', 'alice').length === 0) this.sendSync(start);
        return result;
      }
    }
    const log = new OwnerArrivesMeanwhile();
    const sse = new SseGateway({ log, authenticate });
    const { port } = await sse.listen(0);
    cleanups.push(() => sse.close());
    const response = await fetch(`http://127.0.0.1:${port}/events?threadId=owned-meanwhile`, { headers: { authorization: 'Bearer u-eve' } });
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ error: { code: 'THREAD_FORBIDDEN' } });
    // The same answer as a stream of the thread requested now, and the owner's own stream has the event.
    const again = await fetch(`http://127.0.0.1:${port}/events?threadId=owned-meanwhile`, { headers: { authorization: 'Bearer u-eve' } });
    expect(again.status).toBe(403);
    expect(await again.json()).toMatchObject({ error: { code: 'THREAD_FORBIDDEN' } });
    const owner = await fetch(`http://127.0.0.1:${port}/events?threadId=owned-meanwhile`, { headers: { authorization: 'Bearer u-alice' } });
    expect(owner.status).toBe(200);
    const reader = owner.body!.getReader();
    cleanups.push(() => reader.cancel().catch(() => undefined));
    let text = '';
    while (!text.includes(`"id":"${start.id}"`)) {
      const { value, done } = await reader.read();
      if (done) throw new Error('stream ended');
      text += new TextDecoder().decode(value);
    }
    // Nothing is left of the refused request.
    expect(sse.stats().connections.open).toBe(1);
  });

  // The other endings the log can give while it answers an SSE subscribe: each a clear refusal
  // (the response has not started), never a hanging response.
  it('F9: an SSE stream whose subscription the log ends while answering (closed, or live events past the bound) gets 503 SUBSCRIBE_FAILED, not a hanging response', async () => {
    class EndsWhileAnswering extends MemoryTransport {
      override async subscribe(request: SubscribeRequest, listener: LogListener): Promise<SubscribeResult> {
        const result = this.subscribeSync(request, listener);
        if (request.threadId === 'closed-meanwhile') listener.onClose?.();
        if (request.threadId === 'burst-meanwhile') {
          const run = new RunBuilder('eve', 'burst-meanwhile');
          this.sendSync(run.started());
          for (let i = 0; i < 3; i++) this.sendSync(run.thinking(`burst ${i}`));
        }
        return result;
      }
    }
    const sse = new SseGateway({ log: new EndsWhileAnswering(), authenticate, maxQueuedEvents: 2 });
    const { port } = await sse.listen(0);
    cleanups.push(() => sse.close());
    for (const threadId of ['closed-meanwhile', 'burst-meanwhile']) {
      const response = await fetch(`http://127.0.0.1:${port}/events?threadId=${threadId}`, { headers: { authorization: 'Bearer u-eve' } });
      expect(response.status, threadId).toBe(503);
      expect(await response.json(), threadId).toMatchObject({ error: { code: 'SUBSCRIBE_FAILED' } });
    }
    expect(sse.stats().connections.open).toBe(0);
  });

  // docs/gateways.md (a refused start does not claim the thread) and docs/agents.md ("other runs are
  // not affected"): forgetting a refused start must never drop what a run that delivered events
  // established. Past 10,000 idle queues the bridge sweeps them; a second, different agent_started of
  // a run so swept is refused by the log (RUN_ID_CONFLICT) with nothing of its new queue delivered.
  it('F10: a second start of a run whose queue was swept, refused by the log, leaves the run and its thread’s owner on the bridge: the run’s next event is delivered, another user is still refused', async () => {
    const { gateway, url, bridge } = await bridgedGateway(cleanups);
    const alice = await Peer.open(url, 'alice');
    cleanups.push(() => alice.ws.terminate());
    expect((await alice.subscribe('swept')).type).toBe('subscribed');
    // A custom run id: it resolves to its thread through the registry only.
    const run = new RunBuilder('alice', 'swept');
    const custom = (event: AgentEvent): AgentEvent => ({ ...event, runId: 'alices-long-run' });
    const delivered = [custom(run.started()), custom(run.thinking('one'))];
    for (const event of delivered) await expect(bridge.send(event)).resolves.toBe('delivered');
    // 10,000 other runs, never completed: opening their queues sweeps the idle ones, alice's included.
    const filler = new RunBuilder('filler', 'filler');
    for (let i = 0; i < 10_000; i++) await bridge.send({ ...filler.started(), runId: `filler-${i}` });
    const again = custom(run.started());
    await expect(bridge.send(again)).rejects.toMatchObject({ name: 'DeliveryError', causeCode: 'RUN_ID_CONFLICT' });
    expect(bridge.registry.has('alices-long-run')).toBe(true);
    expect(bridge.registry.ownerOf('swept')).toBe('alice');
    const next = custom(run.thinking('two'));
    await expect(bridge.send(next)).resolves.toBe('delivered');
    await expect(bridge.send(new RunBuilder('mallory', 'swept').started())).rejects.toMatchObject({ name: 'DeliveryError', causeCode: 'THREAD_FORBIDDEN' });
    await alice.until(() => alice.events().length >= 3);
    expect(alice.events().map((f) => f.event!.id)).toEqual([...delivered, next].map((e) => e.id));
    expect(alice.errors()).toEqual([]);
  });
});
