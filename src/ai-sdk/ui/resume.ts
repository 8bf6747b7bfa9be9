import type { LogEntry } from '../../transport/types.js';

/** What a resume request gets, decided from the thread's retained log. */
export type ResumePlan =
  /** Nothing to resume: no active run (no cursor given), or the cursor's run ended and the client has all of it. → 204 */
  | { kind: 'none' }
  /** The cursor cannot be honoured completely (unknown, trimmed, another log incarnation). → 409 */
  | { kind: 'gap'; message: string }
  /** Stream `rest` (then live events) of `runId`; `seen` only advances the mapping. */
  | { kind: 'stream'; runId: string; seen: LogEntry[]; rest: LogEntry[]; completed: boolean };

/**
 * Without a cursor: the latest run of the thread that has not completed, from its start (a replay:
 * `useChat` rebuilds the message from its `start` chunk). With a cursor: the cursor's run, after the
 * cursor (a continuation: the client keeps what it has). All or nothing: a cursor that is not in the
 * retained log, or whose run's start is no longer retained, is a gap, never a partial replay.
 */
export function planResume(replay: readonly LogEntry[], cursor: string | undefined): ResumePlan {
  if (cursor === undefined) return planLatest(replay);
  const at = replay.findIndex((entry) => entry.cursor === cursor);
  if (at < 0) return { kind: 'gap', message: 'The cursor is not in the retained history of this chat' };
  const runId = replay[at]!.event.runId;
  const run = replay.filter((entry) => entry.event.runId === runId);
  if (run[0]?.event.type !== 'agent_started') {
    return { kind: 'gap', message: 'The start of this run is no longer retained' };
  }
  const split = run.findIndex((entry) => entry.cursor === cursor) + 1;
  const seen = run.slice(0, split);
  const rest = run.slice(split);
  const completed = run.some((entry) => entry.event.type === 'agent_completed');
  if (rest.length === 0 && completed) return { kind: 'none' };
  return { kind: 'stream', runId, seen, rest, completed };
}

function planLatest(replay: readonly LogEntry[]): ResumePlan {
  const completed = new Set<string>();
  for (let index = replay.length - 1; index >= 0; index--) {
    const { event } = replay[index]!;
    if (event.type === 'agent_completed') completed.add(event.runId);
    else if (event.type === 'agent_started' && !completed.has(event.runId)) {
      const runId = event.runId;
      const rest = replay.slice(index).filter((entry) => entry.event.runId === runId);
      return { kind: 'stream', runId, seen: [], rest, completed: false };
    }
  }
  return { kind: 'none' };
}
