import { AuthError, StateError } from '../../errors/index.js';
import { parseEvent } from '../../events/parse.js';
import type { UserAnsweredEvent } from '../../events/schema.js';
import { answerThreadId, buildAnswerEvent, type AnswerInput, type AnswerReceipt, type PendingRequest } from '../interaction.js';
import { threadTag } from '../memory/log-common.js';
import { toTransportError, type RedisConnection } from './connection.js';
import { formatCursor } from './cursor.js';
import type { RedisKeys } from './keys.js';
import { ANSWER_REQUEST_SCRIPT, CLOSE_REQUEST_SCRIPT, OPEN_REQUEST_SCRIPT } from './scripts.js';
import { threadForbidden } from '../../errors/thread-forbidden.js';
import { assertUserId } from '../../ids/user-id.js';

/** Requests (and answers) are kept this long after a thread's last request: the default thread TTL. */
const REQUEST_TTL_SECONDS = 86_400;

const field = (requestId: string): string => `q:${requestId}`;

/**
 * Requests to users in Redis, beside the thread's run states in its meta hash: whichever process
 * receives an answer appends it (one Lua call checks the user, that it is the first answer, that
 * the request and its run are still open, and appends), and the waiting run, on any worker,
 * follows the thread's stream for it. See the scripts in `scripts.ts`.
 */
export class RedisRequests {
  constructor(
    private readonly connection: RedisConnection,
    private readonly keys: RedisKeys,
  ) {}

  /** The script is sent synchronously (before anything the caller does next, on the same connection). */
  async open(request: PendingRequest): Promise<void> {
    const { threadId } = request;
    assertUserId(request.userId, 'openRequest()');
    const args = [this.keys.meta(threadId), this.keys.requests(threadId), field(request.requestId), `p${JSON.stringify(request)}`, request.userId, String(REQUEST_TTL_SECONDS)];
    // EVAL, not EVALSHA: a NOSCRIPT retry would go out after the call's event, and the order is the point.
    const result = await this.connection.send<number>(['EVAL', OPEN_REQUEST_SCRIPT.source, '2', ...args]).catch((error: unknown) => {
      throw toTransportError(error, `Recording request ${request.requestId}`);
    });
    if (result !== 1) throw threadForbidden(threadId);
  }

  async answer(input: AnswerInput): Promise<AnswerReceipt> {
    const threadId = answerThreadId(input);
    // The script compares the user in Redis (UTF-8, where a lone surrogate reads as U+FFFD).
    assertUserId(input.userId, 'answerRequest()');
    const meta = this.keys.meta(threadId);
    const key = field(input.requestId);
    const record = await this.connection.send<string | null>(['HGET', this.keys.requests(threadId), key]).catch((error: unknown) => {
      throw toTransportError(error, `Reading request ${input.requestId}`);
    });
    const unknown = () => new StateError('ANSWER_UNKNOWN_REQUEST', `Run ${input.runId} has no request ${input.requestId}`);
    if (!record) throw unknown();
    if (record.startsWith('a')) throw new StateError('ANSWER_ALREADY_GIVEN', `Request ${input.requestId} was answered already`);
    const request = JSON.parse(record.slice(1)) as PendingRequest;
    if (request.runId !== input.runId) throw unknown();
    if (request.userId !== input.userId) throw new AuthError(`Request ${input.requestId} belongs to another user's run`, { code: 'ANSWER_FORBIDDEN' });
    const { event, json } = buildAnswerEvent(request, input);
    const reply = await this.run<number | [string, string]>(ANSWER_REQUEST_SCRIPT, 3, [this.keys.stream(threadId), meta, this.keys.requests(threadId), key, input.userId, input.runId, json], `Answering request ${input.requestId}`);
    if (Array.isArray(reply)) return { event, cursor: formatCursor(reply[1], threadTag(threadId), reply[0]) };
    switch (reply) {
      case 1:
        throw new AuthError(`Request ${input.requestId} belongs to another user's run`, { code: 'ANSWER_FORBIDDEN' });
      case 2:
        throw new StateError('ANSWER_ALREADY_GIVEN', `Request ${input.requestId} was answered already`);
      case 3:
        throw new StateError('REQUEST_CLOSED', `Request ${input.requestId} was closed without an answer`);
      case 4:
        throw new StateError('RUN_CLOSED', `Run ${input.runId} has completed`);
      default:
        throw unknown();
    }
  }

  async close(request: PendingRequest): Promise<UserAnsweredEvent | undefined> {
    const json = await this.run<string>(CLOSE_REQUEST_SCRIPT, 1, [this.keys.requests(request.threadId), field(request.requestId)], `Closing request ${request.requestId}`);
    if (!json) return undefined;
    const event = parseEvent(JSON.parse(json));
    return event.type === 'user_answered' ? event : undefined;
  }

  private async run<T>(script: typeof OPEN_REQUEST_SCRIPT, numKeys: number, args: string[], what: string): Promise<T> {
    try {
      return await script.run<T>(this.connection, numKeys, args);
    } catch (error) {
      throw toTransportError(error, what);
    }
  }
}
