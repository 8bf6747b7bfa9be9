import { agentwireCode } from '../../errors/code-of.js';
import { readThrown } from '../../errors/guards.js';
import { shown } from '../../errors/options.js';
import type { CancelAcceptedFrame, ErrorFrame } from '../../protocol/frames.js';
import type { CancelRun } from './options.js';

const OUTCOMES: ReadonlySet<string> = new Set(['requested', 'cancelled', 'already_finished']);

/**
 * Handles a `cancel` frame with the gateway's `cancelRun` hook, as the connection's authenticated
 * user: `cancel_accepted` with the hook's outcome, or an `error` frame naming the run. Another
 * user's run and an unknown one are told apart only as the hook tells them (a run queue answers
 * THREAD_FORBIDDEN / RUN_NOT_FOUND). A hook that fails otherwise (it threw, or answered something
 * that is not a `CancelResult`) is contained: the client gets `UNAVAILABLE` without the error's
 * text, and `report` gets the error. Never rejects.
 */
export async function cancelFrame(
  cancelRun: CancelRun | undefined,
  userId: string,
  runId: string,
  report: (error: unknown) => void,
): Promise<CancelAcceptedFrame | ErrorFrame> {
  const refuse = (code: ErrorFrame['code'], message: string): ErrorFrame => ({ type: 'error', code, message, runId });
  if (!cancelRun) return refuse('UNAVAILABLE', 'this gateway cancels no runs (no cancelRun hook)');
  try {
    const outcome = await cancelRun({ runId, userId });
    if (!OUTCOMES.has(outcome)) {
      report(new TypeError(`The cancelRun hook answered ${shown(outcome)}, not 'requested', 'cancelled' or 'already_finished'`));
      return refuse('UNAVAILABLE', 'the run could not be cancelled; try again');
    }
    return { type: 'cancel_accepted', runId, outcome };
  } catch (error) {
    // The hook's value is read guarded: one that throws when looked at is a failure like any other.
    const code = agentwireCode(error);
    if (code === 'RUN_NOT_FOUND' || code === 'THREAD_FORBIDDEN') {
      return refuse(code, readThrown(error).message ?? (code === 'RUN_NOT_FOUND' ? `no run ${runId}` : `run ${runId} belongs to another user`));
    }
    report(error);
    return refuse('UNAVAILABLE', 'the run could not be cancelled; try again');
  }
}
