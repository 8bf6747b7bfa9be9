import { nanoid } from 'nanoid';
import { StateError, ValidationError } from '../errors/index.js';
import { DEFAULT_JSON_LIMITS, exceedsDepth, newRunEvent, rememberEventJson, runEnvelopeJson, serializeRunEvent, type JsonLimits } from '../events/json.js';
import { assertEventData } from '../events/parse.js';
import { WIRE_VERSION, type AgentEvent, type EventData, type EventIdentity, type EventOfType, type EventType } from '../events/schema.js';
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
/** One of the five (a switch: a Set lookup per event costs more). */
function isKnownType(type: string): boolean {
  const known = type as EventType;
  switch (known) {
    case 'agent_started':
    case 'agent_thinking':
    case 'tool_executing':
    case 'tool_completed':
    case 'agent_completed':
      return true;
    default: {
      // Does not compile once EVENT_TYPES has a type this switch lacks.
      const other: never = known;
      void other;
      return false;
    }
  }
}

/**
 * Builds the events of one run: envelope, unique id, gapless `seq`, timestamp, schema check, and
 * the event's JSON (serialized once, here; every transport reuses the string via `eventJson`).
 * Invalid or unserializable data throws before a seq is consumed, so a rejected event never
 * leaves a gap. After `agent_completed` the emitter is closed: nothing can follow the terminal event.
 */
export class RunEmitter {
  private seq = 0;
  /** Tool calls of the run so far (`nextCallId`). */
  private calls = 0;
  private closed = false;
  private readonly validate: boolean;
  /** Size and depth limits of the run's events. */
  readonly limits: Readonly<JsonLimits>;
  /** The JSON every event of the run shares (run id, thread, user, agent), made once. */
  private readonly runJson: string;
  /**
   * Event ids are this run's random prefix (a nanoid of 16 characters: 96 random bits) and the
   * event's seq (decimal, the same text as its `seq` field, so one number becomes a string once):
   * unique like a nanoid per event, at a fraction of its cost.
   */
  private readonly idPrefix = nanoid(16);
  /** `{"v":1,"id":"<idPrefix>`: the start of every event's JSON. */
  private readonly idHead: string;
  private thinkingHead: string | undefined;
  private executingHead: string | undefined;
  private completedHead: string | undefined;

  constructor(
    readonly identity: EventIdentity,
    private readonly options: RunEmitterOptions = {},
  ) {
    this.validate = options.validate ?? true;
    this.limits = options.limits ?? DEFAULT_JSON_LIMITS;
    this.runJson = runEnvelopeJson(identity);
    this.idHead = '{"v":' + WIRE_VERSION + ',"id":"' + this.idPrefix;
    this.idHead.charCodeAt(0);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * A new tool call id of this run: `call_` + the run's random prefix + a counter, unique like a
   * nanoid per call (the prefix has 96 random bits) for a fraction of its cost.
   */
  nextCallId(): string {
    return 'call_' + this.idPrefix + '_' + (++this.calls).toString(36);
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
   * run afterwards (0 without a bridge). `dataJson`: see `prepare`.
   */
  push<T extends EventType>(type: T, data: EventData<T>, settle: DeliveryCallback, dataJson?: string): number {
    return this.dispatch(this.prepare(type, data, dataJson), settle);
  }

  /**
   * Builds, checks and serializes the next event and consumes its seq, without observing or
   * delivering it: `dispatch` does that. Lets a caller find out that an event cannot be built
   * (a run's `agent_started` with an input that is not JSON) before anything else happens.
   * `dataJson`, when given, must be exactly `JSON.stringify(data)` with every nested value already
   * checked against `limits.maxDepth` (the agent's own events: see `agent/event-json.ts`).
   * @internal `dataJson`
   */
  prepare<T extends EventType>(type: T, data: EventData<T>, dataJson?: string): EventOfType<T> {
    if (this.closed) {
      throw new StateError('RUN_CLOSED', `Run ${this.identity.runId} has completed; ${type} cannot follow agent_completed`);
    }
    // The type goes into the JSON as it is: it must be one of the five (also when data is not validated).
    if (!isKnownType(type)) throw new ValidationError(`Unknown event type ${JSON.stringify(String(type))}`, { code: 'INVALID_EVENT', field: 'type' });
    if (this.validate && !quickValid(type, data)) assertEventData(type, data);
    const seq = this.seq + 1;
    const seqText = '' + seq;
    const event = newRunEvent<EventOfType<T>>(WIRE_VERSION, this.idPrefix + seqText, type, this.identity, seq, Date.now(), data);
    this.serialize(event, seqText, dataJson);
    this.seq = seq;
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

  /**
   * Delivers an event made by `prepare` without observing it locally; `observe` does that. For a
   * run's `agent_started`, observed only once the log accepted it (a start the log refuses rejects
   * `run()`, and local listeners must not see a run that never ends). Returns the run's queued count.
   */
  deliver(event: AgentEvent, settle: DeliveryCallback): number {
    const bridge = this.options.bridge;
    if (bridge) return bridge.enqueueSerialized(event, settle);
    settle(undefined, 'delivered', event);
    return 0;
  }

  /** Hands an event made by `prepare` to local observation (what `dispatch` does before delivering). */
  observe(event: AgentEvent): void {
    this.options.onEvent?.(event);
  }

  /**
   * The event's JSON, the same text as `JSON.stringify(event)`, remembered for `eventJson`. Built
   * from five pieces, four of them made once (per run, per type of the run, per millisecond), so a
   * think() costs one short rope and its flattening. Anything unusual (data that is not JSON, too
   * deep, an event that may be too large) goes to `serializeRunEvent`, which refuses it with the
   * exact error or serializes it.
   */
  private serialize(event: AgentEvent, seqText: string, dataJson: string | undefined): void {
    const limits = this.limits;
    if (dataJson === undefined) {
      try {
        dataJson = JSON.stringify(event.data);
      } catch {
        dataJson = undefined;
      }
      if (dataJson === undefined || exceedsDepth(dataJson, limits.maxDepth)) {
        serializeRunEvent(event, this.runJson, limits);
        return;
      }
    }
    const json = this.idHead + seqText + this.typeHead(event.type) + seqText + tsJson(event.ts) + dataJson + '}';
    if (json.length > limits.maxBytes / 3) {
      serializeRunEvent(event, this.runJson, limits); // counts its UTF-8 bytes; throws EVENT_TOO_LARGE past the limit
      return;
    }
    // One string per retained event (the rope's few parts become garbage at once).
    json.charCodeAt(0);
    rememberEventJson(event, json);
  }

  /** `","type":"<type>",<run's fields>,"seq":`, made once per type of event the run emits. */
  private typeHead(type: string): string {
    switch (type) {
      case 'agent_thinking':
        return (this.thinkingHead ??= this.makeTypeHead(type));
      case 'tool_executing':
        return (this.executingHead ??= this.makeTypeHead(type));
      case 'tool_completed':
        return (this.completedHead ??= this.makeTypeHead(type));
      default:
        return this.makeTypeHead(type);
    }
  }

  private makeTypeHead(type: string): string {
    const head = '","type":"' + type + '",' + this.runJson + ',"seq":';
    head.charCodeAt(0);
    return head;
  }
}

let lastTs = -1;
let lastTsJson = '';

/** `,"ts":<ts>,"data":`, shared by every event of the same millisecond (many, on the hot path). */
function tsJson(ts: number): string {
  if (ts !== lastTs) {
    lastTsJson = ',"ts":' + ts + ',"data":';
    lastTsJson.charCodeAt(0);
    lastTs = ts;
  }
  return lastTsJson;
}
