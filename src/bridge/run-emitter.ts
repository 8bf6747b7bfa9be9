import { nanoid } from 'nanoid';
import { StateError } from '../errors/index.js';
import { assertEventData } from '../events/parse.js';
import { WIRE_VERSION, type AgentEvent, type EventData, type EventIdentity, type EventOfType, type EventType } from '../events/schema.js';
import type { AgentBridge, DeliveryCallback, DeliveryReceipt } from './agent-bridge.js';

export interface RunEmitterOptions {
  /** Where events are delivered; without one they are only observed locally. */
  bridge?: AgentBridge | undefined;
  /** Local observation, called synchronously for every event before delivery. */
  onEvent?: (event: AgentEvent) => void;
  /** Check `data` against the event schema before emitting. Default true. */
  validate?: boolean;
}

export interface Emitted<T extends EventType> {
  event: EventOfType<T>;
  /** Settles when the bridge delivered or buffered the event (rejects with `DeliveryError`). */
  delivery: Promise<DeliveryReceipt>;
}

const LOCAL_ONLY: Promise<DeliveryReceipt> = Promise.resolve('delivered');

/**
 * Builds the events of one run: envelope, unique id, gapless `seq`, timestamp, schema check.
 * Invalid data throws before a seq is consumed, so a rejected event never leaves a gap.
 * After `agent_completed` the emitter is closed: nothing can follow the terminal event.
 */
export class RunEmitter {
  private seq = 0;
  private closed = false;
  private readonly validate: boolean;

  constructor(
    readonly identity: EventIdentity,
    private readonly options: RunEmitterOptions = {},
  ) {
    this.validate = options.validate ?? true;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Number of events emitted so far (the last seq). */
  get count(): number {
    return this.seq;
  }

  /** Emits an event; `delivery` settles when the bridge delivered or buffered it. */
  emit<T extends EventType>(type: T, data: EventData<T>): Emitted<T> {
    const event = this.build(type, data);
    const bridge = this.options.bridge;
    return { event, delivery: bridge ? bridge.deliver(event) : LOCAL_ONLY };
  }

  /**
   * Callback form of `emit` (no promise per event): `settle` gets the delivery outcome, at once
   * when there is no bridge. Throws synchronously, before a seq is used, for invalid data.
   */
  /** Returns the number of events queued for the run afterwards (0 without a bridge). */
  push<T extends EventType>(type: T, data: EventData<T>, settle: DeliveryCallback): number {
    const event = this.build(type, data);
    const bridge = this.options.bridge;
    if (bridge) return bridge.enqueue(event, settle);
    settle(undefined, 'delivered', event);
    return 0;
  }

  private build<T extends EventType>(type: T, data: EventData<T>): EventOfType<T> {
    if (this.closed) {
      throw new StateError('RUN_CLOSED', `Run ${this.identity.runId} has completed; ${type} cannot follow agent_completed`);
    }
    if (this.validate) assertEventData(type, data);
    const { runId, threadId, userId, agent } = this.identity;
    const event = { v: WIRE_VERSION, id: nanoid(), type, runId, threadId, userId, agent, seq: ++this.seq, ts: Date.now(), data } as EventOfType<T>;
    if (type === 'agent_completed') this.closed = true;
    this.options.onEvent?.(event);
    return event;
  }
}
