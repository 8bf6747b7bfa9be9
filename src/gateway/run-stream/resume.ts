import { AuthError } from '../../errors/index.js';
import type { EventLog, HistoryGap, HistoryGapReason, LogEntry } from '../../transport/types.js';
import { threadForbidden } from '../../errors/thread-forbidden.js';
import { isInstance } from '../../errors/guards.js';
import { subscribeFailed } from '../follower.js';

/** Where a resuming client is: after the entry with `cursor`, or inside it after `skip` of its frames. */
export interface ResumePosition {
  cursor: string;
  /** Frames of that entry the client has (AG-UI frame ids `<cursor> <index>`); absent: all of them. */
  skip?: number | undefined;
}

/** What a resume request gets. */
export type ResumePlan =
  /** Stream: `seen` advance the mapping (the client has them), `rest` first, then live entries. */
  | { kind: 'stream'; runId: string; seen: LogEntry[]; skip?: number | undefined; rest: LogEntry[] }
  /** The client has all of a completed run: nothing to send (HTTP 204). */
  | { kind: 'complete'; runId: string }
  /** No entry of the run is retained in this thread. */
  | { kind: 'not_found' }
  /** The position cannot be honoured completely (never a partial replay). */
  | { kind: 'gap'; gap: HistoryGap };

const NOOP_LISTENER = { onEntries: () => undefined };

function gapOf(threadId: string, requested: string, reason: HistoryGapReason, message: string): ResumePlan {
  return { kind: 'gap', gap: { threadId, requested, reason, message } };
}

/**
 * Plans a resume from the follower's replay (`replay`: every retained entry of the thread, or of
 * the run, taken when the stream subscribed) and, with a position, what the log itself says
 * follows that cursor. The log decides whether the cursor is honoured: a second subscription
 * after it (closed at once) gets the log's verdict (`history_gap` for a cursor of another thread,
 * epoch or log, a forged or a trimmed one), and its replay tells which of the follower's entries
 * the client already has. No cursor string is ever looked up by the surface.
 *
 * All or nothing: a run whose `agent_started` is no longer retained cannot be rebuilt (the
 * mapping of its entries depends on what came before) and is a gap too.
 */
export async function planResume(
  log: EventLog,
  target: { userId: string; threadId: string; runId?: string | undefined },
  replay: readonly LogEntry[],
  position: ResumePosition | undefined,
): Promise<ResumePlan> {
  const { userId, threadId } = target;
  let seen: LogEntry[] = [];
  let rest: LogEntry[] = [...replay];
  if (position) {
    let verdict;
    try {
      verdict = await log.subscribe({ userId, threadId, after: position.cursor }, NOOP_LISTENER);
    } catch (error) {
      if (isInstance(error, AuthError)) throw threadForbidden(threadId, error);
      throw subscribeFailed(error, 'Could not read the thread');
    }
    if (verdict.status === 'history_gap') return { kind: 'gap', gap: verdict.gap };
    verdict.subscription.close();
    // Everything the log holds after the cursor now: a superset of the replay's part after it.
    const after = new Set(verdict.replay.map((entry) => entry.event.id));
    seen = [];
    rest = [];
    for (const entry of replay) {
      if (after.has(entry.event.id)) rest.push(entry);
      else if (rest.length > 0) {
        // An entry the log does not place after the cursor, behind one it does: not one log order.
        return gapOf(threadId, position.cursor, 'unknown_cursor', 'The cursor does not name a position in this thread');
      } else seen.push(entry);
    }
  }
  const runId = target.runId ?? seen.at(-1)?.event.runId;
  if (runId === undefined) {
    return gapOf(threadId, position?.cursor ?? '', 'trimmed', 'The event this cursor points at is no longer retained');
  }
  const runSeen = seen.filter((entry) => entry.event.runId === runId);
  const runRest = rest.filter((entry) => entry.event.runId === runId);
  const first = runSeen[0] ?? runRest[0];
  if (!first) return { kind: 'not_found' };
  if (first.event.type !== 'agent_started') {
    return gapOf(threadId, position?.cursor ?? '', 'trimmed', 'The start of this run is no longer retained');
  }
  // The cursor must be an event of this run (the last one the client has) when the run is named
  // or the client resumes inside an entry: a frame id of another run is not a position in this one.
  if (position && (target.runId !== undefined || position.skip !== undefined) && runSeen.at(-1)?.cursor !== position.cursor) {
    return gapOf(threadId, position.cursor, 'unknown_cursor', 'The event id does not name an event of this run');
  }
  if (position?.skip !== undefined) return { kind: 'stream', runId, seen: runSeen, skip: position.skip, rest: runRest };
  const completed = runSeen.at(-1)?.event.type === 'agent_completed';
  if (runRest.length === 0 && completed) return { kind: 'complete', runId };
  return { kind: 'stream', runId, seen: runSeen, rest: runRest };
}

/**
 * The latest run of the thread that has not completed (what useChat resumes without a cursor),
 * read from a snapshot of the thread. Throws `THREAD_FORBIDDEN` for another user's thread.
 */
export async function latestActiveRun(log: EventLog, userId: string, threadId: string): Promise<string | undefined> {
  let result;
  try {
    result = await log.subscribe({ userId, threadId }, NOOP_LISTENER);
  } catch (error) {
    if (isInstance(error, AuthError)) throw threadForbidden(threadId, error);
    throw subscribeFailed(error, 'Could not read the thread');
  }
  if (result.status !== 'subscribed') return undefined;
  result.subscription.close();
  const completed = new Set<string>();
  const replay = result.replay;
  for (let index = replay.length - 1; index >= 0; index--) {
    const { event } = replay[index]!;
    if (event.type === 'agent_completed') completed.add(event.runId);
    else if (event.type === 'agent_started' && !completed.has(event.runId)) return event.runId;
  }
  return undefined;
}
