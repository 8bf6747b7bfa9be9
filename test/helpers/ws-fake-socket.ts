import { generateRunId, type AgentEvent } from '../../src/index.js';
import { RunEmitter } from '../../src/bridge/run-emitter.js';
import { type ServerFrame } from '../../src/protocol/index.js';

type Handler = ((event: never) => void) | null;

/**
 * A scriptable stand-in for a browser WebSocket, to drive the client through exact sequences:
 * the test plays the server (`open`, `receive`, `drop`) and reads what the client `sent`.
 */
export class FakeWebSocket {
  static instances: FakeWebSocket[] = [];
  readyState = 0;
  readonly sent: unknown[] = [];
  closedWith: { code?: number; reason?: string } | undefined;
  onopen: Handler = null;
  onmessage: Handler = null;
  onclose: Handler = null;
  onerror: Handler = null;

  /** `options` is what a header-capable class (`ws`) receives as its second argument. */
  constructor(
    readonly url: string,
    readonly options?: unknown,
  ) {
    FakeWebSocket.instances.push(this);
  }

  static reset(): void {
    FakeWebSocket.instances = [];
  }

  static last(): FakeWebSocket {
    const socket = FakeWebSocket.instances.at(-1);
    if (!socket) throw new Error('no socket was opened');
    return socket;
  }

  send(data: string): void {
    this.sent.push(JSON.parse(data));
  }

  close(code?: number, reason?: string): void {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }

  /** Server side: the handshake succeeded and the server greeted the client. */
  open(userId = 'alice'): void {
    this.readyState = 1;
    this.call(this.onopen, {});
    this.receive({ type: 'hello', v: 1, userId, connectionId: 'c1' });
  }

  /** Server side: one WebSocket message holding a frame or a batch. */
  receive(message: ServerFrame | ServerFrame[] | string): void {
    this.call(this.onmessage, { data: typeof message === 'string' ? message : JSON.stringify(message) });
  }

  /** Server side: the connection ends (1006 = network failure). */
  drop(code = 1006, reason = '', errorMessage?: string): void {
    if (errorMessage !== undefined) this.call(this.onerror, { message: errorMessage });
    this.readyState = 3;
    this.call(this.onclose, { code, reason });
  }

  private call(handler: Handler, event: unknown): void {
    (handler as ((event: unknown) => void) | null)?.(event);
  }
}

/** Real events of one run (agent_started, `thoughts` × agent_thinking, agent_completed). */
export function runEvents(thoughts: number, userId = 'alice', threadId = 't'): AgentEvent[] {
  const emitter = new RunEmitter({ runId: generateRunId(threadId), threadId, userId, agent: 'a' });
  const events: AgentEvent[] = [emitter.emit('agent_started', { metadata: {} }).event];
  for (let i = 0; i < thoughts; i++) events.push(emitter.emit('agent_thinking', { text: `t${i}` }).event);
  events.push(emitter.emit('agent_completed', { status: 'succeeded', result: null, durationMs: 1 }).event);
  return events;
}

/** Event frames for `events`, with cursors `e:<offset>` starting after `offset`. */
export function eventFrames(events: AgentEvent[], offset = 0, threadId = 't'): ServerFrame[] {
  return events.map((event, i) => ({ type: 'event', threadId, cursor: `e:${offset + i + 1}`, event }));
}
