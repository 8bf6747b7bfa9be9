import { AgentwireError } from '../../errors/index.js';
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
    if (error instanceof AgentwireError && ANSWER_CODES.has(error.code)) return refuse(error.code as GatewayErrorCode, error.message);
    if (error instanceof AgentwireError && error.code === 'THREAD_FORBIDDEN') return refuse('ANSWER_FORBIDDEN', error.message);
    return refuse('UNAVAILABLE', 'the answer could not be stored; try again');
  }
}
