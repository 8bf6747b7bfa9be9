import { AgentwireError, StateError, ToolError, TransportError } from '../errors/index.js';
import type { UserAnsweredEvent } from '../events/schema.js';
import type { InteractionLog, PendingRequest } from '../transport/interaction.js';
import type { LogEntry, Subscription } from '../transport/types.js';
import { abortErrorFrom } from './abort.js';
import { isInstance } from '../errors/guards.js';

/** How long a call waits for its user by default (`approvalTimeoutMs`, `ask(…, { timeoutMs })`): 5 minutes. */
export const DEFAULT_APPROVAL_TIMEOUT_MS = 300_000;
/** Pause before following the thread again when the log ended the subscription while a run waited. */
const RESUBSCRIBE_DELAY_MS = 100;

/**
 * Records `request` in `log`, synchronously before the caller emits its `tool_executing` (with
 * `seq` = the run's next seq), so no user can see a request the log does not know yet. The
 * returned promise settles when the log confirmed it (awaited by `awaitAnswer`).
 */
export function openRequest(log: InteractionLog, request: PendingRequest): Promise<void> {
  try {
    const opened = log.openRequest(request);
    if (opened) opened.catch(() => undefined); // awaited later; never an unhandled rejection meanwhile
    return Promise.resolve(opened);
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * Waits for the answer to `request` by following its thread in `log` (so the answer may arrive at
 * any process sharing the log), once `opened` (see `openRequest`). Ends with the answer, or rejects:
 * `APPROVAL_TIMEOUT` after `timeoutMs` (unless the log says an answer came first: then it wins),
 * `AbortError` when the run is cancelled (the request is closed; a later answer is refused).
 *
 * While waiting, the run holds its async context, one subscription to its thread and one timer.
 */
export async function awaitAnswer(
  log: InteractionLog,
  opened: Promise<void>,
  request: PendingRequest,
  tool: string,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<UserAnsweredEvent> {
  await opened;
  if (signal.aborted) {
    void log.closeRequest(request).catch(() => undefined);
    throw abortErrorFrom(signal);
  }
  return new Promise<UserAnsweredEvent>((resolve, reject) => {
    let settled = false;
    let subscription: Subscription | undefined;
    let timer: NodeJS.Timeout | undefined;
    const finish = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      subscription?.close();
      outcome();
    };
    const onEntries = (entries: readonly LogEntry[]): void => {
      for (const { event } of entries) {
        if (event.type === 'user_answered' && event.data.requestId === request.requestId && event.runId === request.runId) {
          finish(() => resolve(event));
          return;
        }
      }
    };
    // Timeout: the log decides between a late answer and the timeout, so both never win.
    const expire = (): void => {
      if (settled) return;
      const timedOut = new ToolError(tool, `No answer to request ${request.requestId} within ${timeoutMs} ms`, { code: 'APPROVAL_TIMEOUT', details: { timeoutMs } });
      log.closeRequest(request).then(
        (answer) => finish(answer ? () => resolve(answer) : () => reject(timedOut)),
        () => finish(() => reject(timedOut)),
      );
    };
    function onAbort(): void {
      finish(() => reject(abortErrorFrom(signal)));
      void log.closeRequest(request).catch(() => undefined);
    }
    const follow = (): void => {
      log
        .subscribe(
          { userId: request.userId, threadId: request.threadId },
          {
            onEntries,
            onClose: (reason) => {
              subscription = undefined;
              if (settled) return;
              if (!reason) {
                finish(() => reject(new TransportError('The log closed while the run waited for its user', { code: 'TRANSPORT_CLOSED', retryable: false })));
                return;
              }
              setTimeout(() => !settled && follow(), RESUBSCRIBE_DELAY_MS).unref();
            },
          },
        )
        .then(
          (result) => {
            if (result.status !== 'subscribed') {
              setTimeout(() => !settled && follow(), RESUBSCRIBE_DELAY_MS).unref();
              return;
            }
            if (settled) {
              result.subscription.close();
              return;
            }
            subscription = result.subscription;
            onEntries(result.replay);
          },
          (error: unknown) => {
            const failure = isInstance(error, AgentwireError) ? error : new StateError('NO_ANSWER_LOG', `Following thread ${request.threadId} failed`, { cause: error });
            finish(() => reject(failure));
          },
        );
    };
    timer = setTimeout(expire, timeoutMs);
    signal.addEventListener('abort', onAbort, { once: true });
    follow();
  });
}

/** What a denied approval throws: the call fails with `TOOL_DENIED` (and the user's reason, if any). */
export function deniedError(tool: string, answer: UserAnsweredEvent): ToolError {
  const reason = answer.data.reason ? `: ${answer.data.reason}` : '';
  return new ToolError(tool, `The user denied the call of tool "${tool}"${reason}`, { code: 'TOOL_DENIED', details: { requestId: answer.data.requestId } });
}
