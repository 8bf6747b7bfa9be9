import { agentwireCode } from '../../errors/code-of.js';
import { readThrown } from '../../errors/guards.js';
import { GATEWAY_ERROR_CODES, type GatewayErrorCode } from '../../protocol/constants.js';
import type { ErrorFrame, AnsweredFrame } from '../../protocol/frames.js';
import type { z } from 'zod/v4';
import type { answerFrameSchema } from '../../protocol/frames.js';
import { isInteractionLog } from '../../transport/interaction.js';
import type { EventLog } from '../../transport/types.js';

const ANSWER_CODES: ReadonlySet<string> = new Set<GatewayErrorCode>(GATEWAY_ERROR_CODES);

/**
 * Handles an `answer` frame: hands it to the gateway's log as the connection's authenticated user
 * (the frame cannot name another) and says how it went: `answered` with the answer's cursor, or an
 * `error` frame naming the request with the log's refusal code. Kept out of the connection so the
 * frame dispatch only calls it. Never rejects.
 */
export async function answerFrame(log: EventLog, userId: string, frame: z.infer<typeof answerFrameSchema>): Promise<AnsweredFrame | ErrorFrame> {
  const { threadId, requestId } = frame;
  const refuse = (code: GatewayErrorCode, message: string): ErrorFrame => ({ type: 'error', code, message, threadId, requestId });
  if (!isInteractionLog(log)) return refuse('UNAVAILABLE', 'this gateway takes no answers: its event log records no requests');
  try {
    const receipt = await log.answerRequest({
      runId: frame.runId,
      threadId,
      requestId,
      userId,
      ...(frame.approved !== undefined && { approved: frame.approved }),
      ...(frame.value !== undefined && { value: frame.value }),
      ...(frame.reason !== undefined && { reason: frame.reason }),
    });
    return { type: 'answered', threadId, requestId, cursor: receipt.cursor };
  } catch (error) {
    // The log's value is read guarded: one that throws when looked at is a failure like any other.
    const code = agentwireCode(error);
    if (code !== undefined && ANSWER_CODES.has(code)) return refuse(code as GatewayErrorCode, readThrown(error).message ?? 'the answer was refused');
    if (code === 'THREAD_FORBIDDEN') return refuse('ANSWER_FORBIDDEN', readThrown(error).message ?? "only the run's own user may answer its requests");
    return refuse('UNAVAILABLE', 'the answer could not be stored; try again');
  }
}
