import { nanoid } from 'nanoid';
import { StateError, ValidationError } from '../errors/index.js';
import { DEFAULT_JSON_LIMITS, newRunEvent, runEnvelopeJson, serializeRunEvent, type JsonLimits } from '../events/json.js';
import { assertEventData } from '../events/parse.js';
import { EVENT_TYPES, WIRE_VERSION, type AgentEvent, type EventData, type EventIdentity, type EventOfType, type EventType } from '../events/schema.js';
import type { AgentBridge, DeliveryCallback, DeliveryReceipt } from './agent-bridge.js';
import { quickValid } from './fast-check.js';

export interface RunEmitterOptions {
  /** Where events are delivered; without one they are only observed locally. */
  bridge?: AgentBridge | undefined;
  /** Local observation, called synchronously for every event before delivery. */
  onEvent?: (event: AgentEvent) => void;
  /** Check `data` against the event schema before emitting. Default true. (JSON safety is always checked.) */
  validate?: boolean;
  /** Size and depth limits of each event. Default `DEFAULT_JSON_LIMITS` (1 MiB, 64 levels). */
  limits?: Readonly<JsonLimits>;
}

export interface Emitted<T extends EventType> {
  event: EventOfType<T>;
  /** Settles when the bridge delivered or buffered the event (rejects with `DeliveryError`). */
  delivery: Promise<DeliveryReceipt>;
}

const LOCAL_ONLY: Promise<DeliveryReceipt> = Promise.resolve('delivered');
const KNOWN_TYPES: ReadonlySet<string> = new Set(EVENT_TYPES);

/**
 * Builds the events of one run: envelope, unique id, gapless `seq`, timestamp, schema check, and
 * the event's JSON (serialized once, here; every transport reuses the string via `eventJson`).
 * Invalid or unserializable data throws before a seq is consumed, so a rejected event never
 * leaves a gap. After `agent_completed` the emitter is closed: nothing can follow the terminal event.
 */
export class RunEmitter {
  private seq = 0;
  private closed = false;
  private readonly validate: boolean;
  private readonly limits: Readonly<JsonLimits>;
  /** The JSON every event of the run shares (run id, thread, user, agent), made once. */
  private readonly runJson: string;
  /**
   * Event ids are this run's random prefix (a nanoid of 16 characters: 96 random bits) and the
   * event's seq in base 36: unique like a nanoid per event, at a fraction of its cost.
   */
  private readonly idPrefix = nanoid(16);

  constructor(
    readonly identity: EventIdentity,
    private readonly options: RunEmitterOptions = {},
  ) {
    this.validate = options.validate ?? true;
    this.limits = options.limits ?? DEFAULT_JSON_LIMITS;
    this.runJson = runEnvelopeJson(identity);
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
    const event = this.prepare(type, data);
    this.options.onEvent?.(event);
    const bridge = this.options.bridge;
    return { event, delivery: bridge ? bridge.deliver(event) : LOCAL_ONLY };
  }

  /**
   * Callback form of `emit` (no promise per event): `settle` gets the delivery outcome, at once
   * when there is no bridge. Throws synchronously, before a seq is used, for invalid data
   * (`ValidationError` `INVALID_EVENT`, `EVENT_NOT_SERIALIZABLE`, `EVENT_TOO_LARGE`) and after
   * the terminal event (`StateError` `RUN_CLOSED`). Returns the number of events queued for the
   * run afterwards (0 without a bridge).
   */
  push<T extends EventType>(type: T, data: EventData<T>, settle: DeliveryCallback): number {
    return this.dispatch(this.prepare(type, data), settle);
  }

  /**
   * Builds, checks and serializes the next event and consumes its seq, without observing or
   * delivering it: `dispatch` does that. Lets a caller find out that an event cannot be built
   * (a run's `agent_started` with an input that is not JSON) before anything else happens.
   */
  prepare<T extends EventType>(type: T, data: EventData<T>): EventOfType<T> {
    if (this.closed) {
      throw new StateError('RUN_CLOSED', `Run ${this.identity.runId} has completed; ${type} cannot follow agent_completed`);
    }
    // The type goes into the JSON as it is: it must be one of the five (also when data is not validated).
    if (!KNOWN_TYPES.has(type)) throw new ValidationError(`Unknown event type ${JSON.stringify(String(type))}`, { code: 'INVALID_EVENT', field: 'type' });
    if (this.validate && !quickValid(type, data)) assertEventData(type, data);
    const event = newRunEvent<EventOfType<T>>(WIRE_VERSION, this.idPrefix + (this.seq + 1).toString(36), type, this.identity, this.seq + 1, Date.now(), data);
    serializeRunEvent(event, this.runJson, this.limits);
    this.seq++;
    if (type === 'agent_completed') this.closed = true;
    return event;
  }

  /** Observes and delivers an event made by `prepare` (in seq order). Returns the run's queued count. */
  dispatch(event: AgentEvent, settle: DeliveryCallback): number {
    this.options.onEvent?.(event);
    const bridge = this.options.bridge;
    if (bridge) return bridge.enqueueSerialized(event, settle);
    settle(undefined, 'delivered', event);
    return 0;
  }
}
