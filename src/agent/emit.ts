import type { DeliveryCallback } from '../bridge/run-queue.js';
import { AuthError, ValidationError, type AgentwireError, type DeliveryError } from '../errors/index.js';
import type { AgentEvent, EventData, EventType } from '../events/schema.js';
import type { RunState } from './run-context.js';

const DELIVERED = Promise.resolve();
const ignoreOutcome = (): void => undefined;

/**
 * Emits an event of the run. Throws synchronously, before a seq is used, when the event cannot
 * be built (schema, JSON, size; `RUN_CLOSED` after the terminal event). The returned promise
 * never rejects (delivery failures are recorded on the run) and resolves once the bridge
 * accepted the event into the run's ordered queue; when the run has more than `highWaterMark`
 * events queued, or for the terminal event, it resolves only once this event was delivered or
 * buffered (backpressure).
 */
export function emitEvent<T extends EventType>(state: RunState, type: T, data: EventData<T>): Promise<void> {
  if (state.highWaterMark === undefined) {
    state.emitter.push(type, data, ignoreOutcome);
    return DELIVERED;
  }
  let done: (() => void) | undefined;
  let settledAlready = false; // refused and buffered events settle synchronously
  const queued = state.emitter.push(type, data, (error, _receipt, event) => {
    if (error) {
      state.deliveryErrors.push(error);
      state.onDeliveryError(error, event);
    }
    if (done) done();
    else settledAlready = true;
  });
  if (settledAlready || (queued <= state.highWaterMark && type !== 'agent_completed')) return DELIVERED;
  return new Promise<void>((resolve) => (done = resolve));
}

/**
 * Dispatches a run's `agent_started` (made with `RunEmitter.prepare`) and resolves once it settled:
 * with the typed refusal when the log refused the start itself (its run id is in use by a run it
 * stores — another process won the race — or its thread belongs to another user), so the run
 * stops before anything else of it can reach the log; otherwise with undefined (a delivery
 * failure of another kind is recorded on the run like any other).
 */
export function dispatchStarted(state: RunState, event: AgentEvent): Promise<AgentwireError | undefined> {
  return new Promise((resolve) => {
    const settle: DeliveryCallback = (error, _receipt, settled) => {
      const refusal = error && startRefusal(error, settled);
      if (error && !refusal) {
        state.deliveryErrors.push(error);
        state.onDeliveryError(error, settled);
      }
      resolve(refusal);
    };
    state.emitter.dispatch(event, settle);
  });
}

function startRefusal(error: DeliveryError, event: AgentEvent): AgentwireError | undefined {
  switch (error.causeCode) {
    case 'RUN_ID_CONFLICT':
    case 'RUN_CLOSED':
      return new ValidationError(`Run id "${event.runId}" is in use by a run the log stores: a run id is used once`, { code: 'RUN_ID_CONFLICT', field: 'runId', cause: error });
    case 'THREAD_OWNER_MISMATCH':
      return new AuthError(`Thread "${event.threadId}" belongs to another user`, { code: 'THREAD_FORBIDDEN', cause: error });
    default:
      return undefined;
  }
}
