import type { DeliveryCallback } from '../bridge/run-queue.js';
import { StateError, ValidationError, type AgentwireError, type DeliveryError } from '../errors/index.js';
import type { AgentEvent, EventData, EventType } from '../events/schema.js';
import type { RunState } from './run-context.js';
import { threadForbidden } from '../errors/thread-forbidden.js';

/** What an emit returns once its event settled (or needs no waiting for): one shared settled promise. */
export const DELIVERED = Promise.resolve();
const ignoreOutcome = (): void => undefined;

/**
 * How a run's events settle, with one callback for all of them (no closure per event): records a
 * delivery failure on the run, and tells `emitEvent` whether the event it is pushing settled during
 * the push (the in-process path: delivered inline) or wakes the emit that waits for it.
 */
export class RunDelivery {
  /** Seq of the event being pushed right now (0: none). */
  private pushing = 0;
  private settledNow = false;
  /** Emits waiting for their event to settle (backpressure, the terminal event), by seq. */
  private waiters: Map<number, () => void> | undefined;
  readonly settle: DeliveryCallback;

  constructor(deliveryErrors: DeliveryError[], onDeliveryError: (error: DeliveryError, event: AgentEvent) => void) {
    this.settle = (error, _receipt, event) => {
      if (error) {
        deliveryErrors.push(error);
        onDeliveryError(error, event);
      }
      if (event.seq === this.pushing) {
        this.settledNow = true;
        return;
      }
      const waiter = this.waiters?.get(event.seq);
      if (waiter) {
        this.waiters!.delete(event.seq);
        waiter();
      }
    };
    // A buffered event given up on later (close() after its drain, a failed bridge): reported like
    // any delivery error. The run's result is a copy made when it resolved: it does not change after.
    this.settle.late = (error, event) => {
      deliveryErrors.push(error);
      onDeliveryError(error, event);
    };
  }

  /** Pushes the run's next event (seq `seq`); returns whether it settled before the push returned, and the queued count. */
  push<T extends EventType>(state: RunState, seq: number, type: T, data: EventData<T>, dataJson: string | undefined): number {
    this.pushing = seq;
    this.settledNow = false;
    try {
      return state.emitter.push(type, data, this.settle, dataJson);
    } finally {
      this.pushing = 0;
    }
  }

  get settledDuringPush(): boolean {
    return this.settledNow;
  }

  /** Resolves once the event `seq` (pushed, not settled yet) settles. */
  wait(seq: number): Promise<void> {
    return new Promise<void>((resolve) => (this.waiters ??= new Map()).set(seq, resolve));
  }
}

/**
 * Emits an event of the run. Throws synchronously, before a seq is used, when the event cannot
 * be built (schema, JSON, size; `RUN_CLOSED` after the terminal event). The returned promise
 * never rejects (delivery failures are recorded on the run) and resolves once the bridge
 * accepted the event into the run's ordered queue; when the run has more than `highWaterMark`
 * events queued, or for the terminal event, it resolves only once this event was delivered or
 * buffered (backpressure). An event that settled during the push (delivered inline, buffered or
 * refused) returns one shared settled promise.
 *
 * `dataJson`, when given, is exactly `JSON.stringify(data)`, its nested values already checked
 * against the run's depth limit (see `event-json.ts`): the emitter then does not serialize `data` again.
 */
export function emitEvent<T extends EventType>(state: RunState, type: T, data: EventData<T>, dataJson?: string): Promise<void> {
  if (state.highWaterMark === undefined) {
    state.emitter.push(type, data, ignoreOutcome, dataJson);
    return DELIVERED;
  }
  const delivery = state.delivery;
  const seq = state.emitter.count + 1;
  const queued = delivery.push(state, seq, type, data, dataJson);
  if (delivery.settledDuringPush || (queued <= state.highWaterMark && type !== 'agent_completed')) return DELIVERED;
  return delivery.wait(seq);
}

/**
 * Dispatches a run's `agent_started` (made with `RunEmitter.prepare`) and resolves once it settled:
 * with the typed refusal when the log refused the start itself (its run id is in use by a run it
 * stores — another process won the race — or its thread belongs to another user) or the bridge is
 * failed (`BRIDGE_FAILED`: refused while failed, or its lazy health check failed), so the run
 * stops before anything else of it can reach the log; otherwise with undefined (a delivery
 * failure of another kind is recorded on the run like any other).
 *
 * Local listeners get the event only once it settled and was not refused: `run()` rejects before
 * the first event, so a refused run shows them nothing (no `agent_started` without its
 * `agent_completed`). The run emits nothing else until this settles, so the order stays the run's.
 * Once per run: the events after it are observed as they are pushed.
 */
export function dispatchStarted(state: RunState, event: AgentEvent): Promise<AgentwireError | undefined> {
  return new Promise((resolve) => {
    const settle: DeliveryCallback = (error, _receipt, settled) => {
      const refusal = error && startRefusal(error, settled);
      if (!refusal) state.emitter.observe(event);
      if (error && !refusal) {
        state.deliveryErrors.push(error);
        state.onDeliveryError(error, settled);
      }
      resolve(refusal);
    };
    settle.late = state.delivery.settle.late;
    state.emitter.deliver(event, settle);
  });
}

function startRefusal(error: DeliveryError, event: AgentEvent): AgentwireError | undefined {
  switch (error.causeCode) {
    case 'RUN_ID_CONFLICT':
    case 'RUN_CLOSED':
      return new ValidationError(`Run id "${event.runId}" is in use by a run the log stores: a run id is used once`, { code: 'RUN_ID_CONFLICT', field: 'runId', cause: error });
    case 'THREAD_OWNER_MISMATCH':
      return threadForbidden(event.threadId, error);
    // The bridge is (or just became) failed: nothing of the run can reach anyone, so it does not start.
    case 'BRIDGE_FAILED':
      return new StateError('BRIDGE_FAILED', `The bridge is failed: run ${event.runId} was not started (call bridge.initialize() to start over)`, { cause: error });
    default:
      return undefined;
  }
}
