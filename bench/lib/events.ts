import { nanoid } from 'nanoid';
import { generateRunId, type AgentEvent } from '../../src/index.js';

/** Serialized size the bench events are padded to (the "~250-byte events"). */
export const EVENT_BYTES = 250;

const WORDS = 'the agent compares the retrieved passages with the question and drafts the next step of its answer '.repeat(4);

/**
 * One user's thread as an agent would fill it: a run that starts with `agent_started` and then
 * thinks, with a gapless `seq`, valid for the client's lifecycle check. Thinking events serialize
 * to about `EVENT_BYTES` bytes. Ids are a per-feed random prefix plus a counter: unique, cheap.
 */
export class ThreadFeed {
  readonly runId: string;
  private seq = 0;
  private readonly idPrefix = `${nanoid(10)}-`;
  private readonly text: string;

  constructor(
    readonly userId: string,
    readonly threadId: string,
  ) {
    this.runId = generateRunId(threadId);
    // Pad the text so that a thinking event of this feed is EVENT_BYTES long (ids grow by a digit now and then).
    const probe = JSON.stringify(this.event('agent_thinking', 1_000_000, Date.now(), ''));
    this.text = WORDS.slice(0, Math.max(0, EVENT_BYTES - probe.length));
  }

  /** The next event of the run (the first is `agent_started`). `ts` may carry sub-millisecond precision. */
  next(ts: number = Date.now()): AgentEvent {
    const seq = ++this.seq;
    return seq === 1 ? this.event('agent_started', seq, ts) : this.event('agent_thinking', seq, ts, this.text);
  }

  private event(type: 'agent_started' | 'agent_thinking', seq: number, ts: number, text = ''): AgentEvent {
    // Plain literals (no spread): building the event is the agent's cost, not the transport's; keep it small.
    const id = `${this.idPrefix}${seq}`;
    if (type === 'agent_started') {
      return { v: 1, id, type, runId: this.runId, threadId: this.threadId, userId: this.userId, agent: 'bench', seq, ts, data: { metadata: {} } };
    }
    return { v: 1, id, type, runId: this.runId, threadId: this.threadId, userId: this.userId, agent: 'bench', seq, ts, data: { text } };
  }
}

/** Users and threads of one group of connections: connection `i` is user `<group>-u<i>` following thread `<group>-t<i>`. */
export function groupFeeds(group: string, count: number): ThreadFeed[] {
  return Array.from({ length: count }, (_, i) => new ThreadFeed(`${group}-u${i}`, `${group}-t${i}`));
}
