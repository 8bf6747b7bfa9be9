import { AuthError, StateError } from '../../errors/index.js';
import type { AgentEvent, UserAnsweredEvent } from '../../events/schema.js';
import { buildAnswerEvent, type AnswerInput, type AnswerReceipt, type PendingRequest } from '../interaction.js';
import type { LogEntry } from '../types.js';

interface RequestRecord {
  readonly request: PendingRequest;
  state: 'pending' | 'answered' | 'closed';
  answer: UserAnsweredEvent | undefined;
}

/** Requests remembered at most; past it the oldest settled ones (then the oldest at all) are forgotten. */
const DEFAULT_MAX_REQUESTS = 10_000;

/**
 * The memory log's requests to users: one answer each, by the run's user, appended to the thread
 * like any event (so the run's end fences it: no answer after `agent_completed`). Settled requests
 * are remembered, bounded, so that a second answer is told `ANSWER_ALREADY_GIVEN`.
 */
export class MemoryRequests {
  private readonly records = new Map<string, RequestRecord>();

  constructor(
    private readonly append: (event: AgentEvent, json: string) => LogEntry,
    private readonly maxRequests = DEFAULT_MAX_REQUESTS,
  ) {}

  get size(): number {
    return this.records.size;
  }

  open(request: PendingRequest): void {
    this.records.set(request.requestId, { request, state: 'pending', answer: undefined });
    if (this.records.size > this.maxRequests) this.evict();
  }

  answer(input: AnswerInput): AnswerReceipt {
    const record = this.records.get(input.requestId);
    if (!record || record.request.runId !== input.runId || (input.threadId !== undefined && input.threadId !== record.request.threadId)) {
      throw new StateError('ANSWER_UNKNOWN_REQUEST', `Run ${input.runId} has no request ${input.requestId}`);
    }
    if (record.request.userId !== input.userId) {
      throw new AuthError(`Request ${input.requestId} belongs to another user's run`, { code: 'ANSWER_FORBIDDEN' });
    }
    if (record.state === 'answered') throw new StateError('ANSWER_ALREADY_GIVEN', `Request ${input.requestId} was answered already`);
    if (record.state === 'closed') throw new StateError('REQUEST_CLOSED', `Request ${input.requestId} was closed without an answer`);
    const { event, json } = buildAnswerEvent(record.request, input);
    const entry = this.append(event, json); // RUN_CLOSED after the run's end, nothing stored
    record.state = 'answered';
    record.answer = event;
    return { event, cursor: entry.cursor };
  }

  close(request: PendingRequest): UserAnsweredEvent | undefined {
    const record = this.records.get(request.requestId);
    if (!record) return undefined;
    if (record.state === 'answered') return record.answer;
    record.state = 'closed';
    return undefined;
  }

  private evict(): void {
    for (const [id, record] of this.records) {
      if (record.state !== 'pending') {
        this.records.delete(id);
        return;
      }
    }
    const oldest = this.records.keys().next();
    if (!oldest.done) this.records.delete(oldest.value);
  }
}
