import type { DeliveryCallback } from '../bridge/run-queue.js';
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

/** Like `emitEvent` for an event already made with `RunEmitter.prepare` (a run's `agent_started`). */
export function dispatchEvent(state: RunState, event: AgentEvent): Promise<void> {
  const settle: DeliveryCallback = (error, _receipt, settled) => {
    if (!error) return;
    state.deliveryErrors.push(error);
    state.onDeliveryError(error, settled);
  };
  state.emitter.dispatch(event, settle);
  return DELIVERED;
}
