import type { AgentEvent } from '../events/schema.js';

/** One streamed answer message as rebuilt so far. */
export interface AnswerMessage {
  runId: string;
  /** `agent_thinking.data.messageId` of its deltas. */
  messageId: string;
  /** The deltas so far, concatenated. */
  text: string;
  /** Model step of its first delta, when the agent gave one. */
  step?: number;
}

interface RunText {
  lastSeq: number;
  messages: AnswerMessage[];
  /** The message the last delta went to, and that delta's seq. */
  current: { message: AnswerMessage; seq: number } | undefined;
}

/**
 * Rebuilds the answer text runs stream (`agent_thinking` with `channel: 'answer'`, see
 * `BaseAgent.streamText`) from the events a client receives. Push every event of a thread as it
 * arrives (`client.on('event', (event) => answers.push(event))`); replays are harmless: an event
 * whose `seq` is not past the last one seen of its run is ignored, so a resumed or replayed stream
 * never adds a delta twice. A message is what the mappers make of it: consecutive deltas of a run
 * (seq after seq) with one `messageId`; a delta after any other event of the run starts a new one.
 * Keeps the text of every run it saw until `forget(runId)`.
 * Browser-safe, no dependency.
 */
export class AnswerText {
  private readonly runs = new Map<string, RunText>();

  /** Takes one event; returns the answer message it extended (undefined for any other event and for repeats). */
  push(event: AgentEvent): AnswerMessage | undefined {
    if (event.type === 'user_answered') return undefined;
    let run = this.runs.get(event.runId);
    if (!run) {
      run = { lastSeq: 0, messages: [], current: undefined };
      this.runs.set(event.runId, run);
    }
    if (event.seq <= run.lastSeq) return undefined;
    run.lastSeq = event.seq;
    if (event.type !== 'agent_thinking' || event.data.channel !== 'answer') return undefined;
    const messageId = event.data.messageId ?? '';
    const current = run.current;
    let message: AnswerMessage;
    if (current && current.seq === event.seq - 1 && current.message.messageId === messageId) message = current.message;
    else {
      message = { runId: event.runId, messageId, text: '' };
      if (event.data.step !== undefined) message.step = event.data.step;
      run.messages.push(message);
    }
    run.current = { message, seq: event.seq };
    message.text += event.data.text;
    return message;
  }

  /** The run's answer messages in the order they started. */
  messages(runId: string): AnswerMessage[] {
    return [...(this.runs.get(runId)?.messages ?? [])];
  }

  /** The run's streamed text: its messages' text, concatenated in order (`''` when none). */
  text(runId: string): string {
    let text = '';
    for (const message of this.runs.get(runId)?.messages ?? []) text += message.text;
    return text;
  }

  /** Drops what is kept of a run. */
  forget(runId: string): void {
    this.runs.delete(runId);
  }
}
