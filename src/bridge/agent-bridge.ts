import { EventEmitter } from 'eventemitter3';
import { isInstance } from '../errors/guards.js';
import { AgentwireError, DeliveryError, StateError, TransportError, ValidationError, type CodeOf } from '../errors/index.js';
import { MAX_TIMER_MS, checker, given, shown } from '../errors/options.js';
import { hasEventJson, resolveLimits, serializeEvent, type JsonLimits } from '../events/json.js';
import { parseEvent } from '../events/parse.js';
import type { AgentEvent, EventIdentity } from '../events/schema.js';
import { ThreadRegistry } from '../ids/thread-registry.js';
import { MemoryTransport } from '../transport/memory/memory-transport.js';
import type { Transport, TransportHealth } from '../transport/types.js';
import { BridgeCounters, type BridgeMetrics } from './metrics.js';
import { Recovery } from './recovery.js';
import { pump, type PumpHost } from './pump.js';
import { resolveRetry, type RetryOptions } from './retry.js';
import type { AgentBridgeOptions, BridgeState } from './options.js';
import { checkRoute, routeMismatch } from './routing.js';
import { RunIds } from './run-ids.js';
import { RunQueues, bufferFull, messageOf, undelivered, type DeliveryCallback, type DeliveryReceipt, type Pending, type RunQueue } from './run-queue.js';

export type { DeliveryCallback, DeliveryReceipt } from './run-queue.js';
export type { RetryOptions } from './retry.js';
export type { AgentBridgeOptions, BridgeState } from './options.js';

interface BridgeEvents {
  state: (next: BridgeState, previous: BridgeState) => void;
  delivery_error: (error: DeliveryError, event: AgentEvent) => void;
}

/**
 * Per-process delivery engine between agents and a transport. Keeps per-run order through
 * retries, holds events (bounded) while the transport is down, flushes them in order on
 * recovery, and never drops an event silently: it is delivered, buffered, or its `send`
 * rejects with a `DeliveryError` that is counted and emitted as `delivery_error`.
 */
export class AgentBridge extends EventEmitter<BridgeEvents> {
  readonly transport: Transport;
  readonly registry: ThreadRegistry;
  /** Limits of the events this bridge accepts (and the default of its agents). */
  readonly limits: Readonly<JsonLimits>;
  private currentState: BridgeState = 'uninitialized';
  private initPromise: Promise<void> | undefined;
  private readonly counters = new BridgeCounters();
  private readonly queues = new RunQueues(this.counters, (error, event) => this.emitDeliveryError(error, event));
  private readonly retry: Required<RetryOptions>;
  private readonly maxBufferedPerRun: number;
  private readonly maxBufferedTotal: number;
  private readonly failAfterMs: number;
  private readonly drainTimeoutMs: number;
  private readonly validate: boolean;
  readonly highWaterMark: number;
  private readonly recovery: Recovery;
  private readonly runIds: RunIds;
  private drained: (() => void) | undefined;
  /**
   * While `close()` drains: the state deliveries go on in (`active` or `degraded`; the public state
   * is already `closed`). Undefined otherwise.
   */
  private draining: BridgeState | undefined;
  private closing: Promise<void> | undefined;
  /** Agents' runs under way (`trackRun`), each with how to cancel it: `close()` ends them and waits for their terminal event. */
  private readonly inFlight = new Map<string, () => void>();
  /** Synchronous sends so far, and the latency of the last one timed (see `deliverInline`). */
  private inlineSends = 0;
  private inlineLatency = 0;
  private readonly pumpHost: PumpHost;

  constructor(options: AgentBridgeOptions = {}) {
    super();
    const check = checker('AgentBridge');
    if (typeof options !== 'object' || options === null) throw check.fail('options', `must be an object (got ${shown(options)})`);
    if (options.transport !== undefined) checkTransport(check, options.transport);
    this.transport = options.transport ?? new MemoryTransport();
    // A transport that knows threads' owners (`ownerOf`: the built-in logs) refuses other users'
    // events itself; for any other, a registered run claims its new thread (see claimOnRegister).
    if (options.registry !== undefined && !isRegistryLike(options.registry)) {
      throw check.fail('registry', `must be a ThreadRegistry (got ${shown(options.registry)})`);
    }
    this.registry = options.registry ?? new ThreadRegistry({ claimOnRegister: typeof (this.transport as { ownerOf?: unknown }).ownerOf !== 'function' });
    this.limits = resolveLimits(options.limits, undefined, 'AgentBridge');
    this.retry = resolveRetry(options.retry);
    this.maxBufferedPerRun = check.integer('maxBufferedPerRun', given(options.maxBufferedPerRun, 1_000));
    this.maxBufferedTotal = check.integer('maxBufferedTotal', given(options.maxBufferedTotal, 100_000));
    this.failAfterMs = check.duration('failAfterMs', given(options.failAfterMs, 300_000));
    // Timers: a longer delay than MAX_TIMER_MS would fire after 1 ms.
    this.drainTimeoutMs = check.duration('drainTimeoutMs', given(options.drainTimeoutMs, 5_000), { min: 0, max: MAX_TIMER_MS });
    const recoveryIntervalMs = check.duration('recoveryIntervalMs', given(options.recoveryIntervalMs, 500), { max: MAX_TIMER_MS });
    this.validate = check.boolean('validate', given(options.validate, true));
    this.highWaterMark = check.integer('highWaterMark', given(options.highWaterMark, 64), 0);
    this.recovery = new Recovery(recoveryIntervalMs, this.failAfterMs, {
      isDegraded: () => this.working === 'degraded',
      fail: () => this.fail(),
    });
    this.runIds = new RunIds(this.registry, this.transport);
    const bridge = this;
    this.pumpHost = {
      transport: this.transport,
      registry: this.registry,
      queues: this.queues,
      recovery: this.recovery,
      retry: this.retry,
      counters: this.counters,
      get state() {
        return bridge.working;
      },
      ready: () => {
        if (this.currentState === 'uninitialized') void this.initialize().catch(() => undefined);
        return this.currentState === 'initializing' ? this.initPromise?.catch(() => undefined) : undefined;
      },
      degrade: () => this.degrade(),
      recover: () => this.recover(),
      idle: () => this.checkDrained(),
    };
  }

  get state(): BridgeState {
    return this.currentState;
  }

  /** The state deliveries follow: the public one, or while `close()` drains, the one it drains in. */
  private get working(): BridgeState {
    return this.draining ?? this.currentState;
  }

  /** Checks the transport and becomes `active`. Idempotent; callable again from `failed`. */
  initialize(): Promise<void> {
    if (this.currentState === 'closed') return Promise.reject(new StateError('BRIDGE_CLOSED', 'The bridge is closed'));
    if (this.initPromise && this.currentState !== 'failed') return this.initPromise;
    this.setState('initializing');
    this.initPromise = (async () => {
      try {
        const health = await this.transport.health?.();
        if (health && !health.ok) {
          throw new TransportError(`Transport is not healthy: ${health.detail ?? 'no detail'}`, { code: 'TRANSPORT_UNHEALTHY' });
        }
        // close() may have happened while the health check was in flight: closed stays closed.
        if (this.currentState === 'initializing') this.setState('active');
      } catch (error) {
        if (this.currentState === 'initializing') {
          this.setState('failed');
          // Events that waited for this check (a run's lazy start) are reported undelivered, as
          // fail() does: their pumps stop on 'failed' without settling them. Caused by BRIDGE_FAILED:
          // a run whose agent_started this was is refused (run() rejects, execute() never runs).
          const reason = `Transport health check failed: ${messageOf(error)}`;
          this.giveUpOnQueued(reason, new StateError('BRIDGE_FAILED', reason, { cause: error }));
        }
        throw isInstance(error, AgentwireError) ? error : new TransportError('Transport health check failed', { cause: error });
      }
    })();
    return this.initPromise;
  }

  async health(): Promise<{ state: BridgeState; transport: TransportHealth | undefined; buffered: number; activeRuns: number }> {
    let transport: TransportHealth | undefined;
    try {
      transport = await this.transport.health?.();
    } catch (error) {
      transport = { ok: false, detail: messageOf(error) };
    }
    return { state: this.currentState, transport, buffered: this.counters.buffered, activeRuns: this.queues.activeRunCount() };
  }

  metrics(): BridgeMetrics {
    return this.counters.snapshot(this.currentState, this.queues.activeRunCount());
  }

  /**
   * Claims a run id for a new run, before its first event: refuses (`ValidationError`
   * `RUN_ID_CONFLICT`) an id under which the registry knows a run (active or finished), that another run is
   * claiming right now, or that the transport still retains events of (`Transport.hasRun`). Of
   * two concurrent claims of one id exactly one succeeds. The claim ends with `openRun` (the run
   * is registered) or `releaseRunId` (it never started).
   */
  claimRunId(runId: string): Promise<void> {
    return this.runIds.claim(runId);
  }

  /** Gives up a claim made with `claimRunId` for a run that did not start. */
  releaseRunId(runId: string): void {
    this.runIds.release(runId);
  }

  /**
   * Registers a run before its first event (run → thread → user). Throws `AuthError` when the
   * thread belongs to another user, so a run can never write into someone else's thread.
   */
  openRun(identity: EventIdentity): void {
    try {
      this.registry.register(identity.runId, identity.threadId, identity.userId);
      this.registry.markStarted(identity.runId);
    } finally {
      this.runIds.release(identity.runId);
    }
  }

  /**
   * Forgets a run whose `agent_started` the transport refused (another process stores a run with
   * its id, or its thread belongs to another user): nothing of it is stored, so its queue goes and
   * the registry forgets it (`ThreadRegistry.forget`), with the thread's owner when only this run
   * had established it. A run that still has events queued, or any event of which was delivered, is left alone.
   */
  abandonRun(runId: string): void {
    const queue = this.queues.get(runId);
    if (queue && queue.head < queue.items.length) return;
    this.queues.delete(runId);
    this.registry.forget(runId);
  }

  /**
   * An agent's run is under way (after `openRun`, before its `agent_started`): `close()` calls
   * `cancel` (the run then ends cancelled, its open tool calls closed first), accepts the run's
   * remaining events and waits for its end (`untrackRun`) within its drain. Returns false, and
   * tracks nothing, once `close()` began: the run's events are refused (`BRIDGE_CLOSED`).
   * @internal
   */
  trackRun(runId: string, cancel: () => void): boolean {
    if (this.currentState === 'closed') return false;
    this.inFlight.set(runId, cancel);
    return true;
  }

  /** The run tracked with `trackRun` has ended (its terminal event settled). @internal */
  untrackRun(runId: string): void {
    if (this.inFlight.delete(runId)) this.checkDrained();
  }

  /**
   * Validates, serializes (with `limits`), routes and queues an event. An event that is not
   * valid, not JSON or too large is refused with a `DeliveryError` (its `causeCode` says why:
   * `INVALID_EVENT`, `EVENT_NOT_SERIALIZABLE`, `EVENT_TOO_LARGE`), counted in `failed`; other runs
   * are not affected. See the class comment for how it settles.
   */
  send(event: AgentEvent): Promise<DeliveryReceipt> {
    let checked: AgentEvent;
    try {
      // Not an object at all (null, a string, an array): refused as invalid even without validation.
      if (typeof event !== 'object' || event === null || Array.isArray(event)) {
        throw new ValidationError('bridge.send() takes an event object', { code: 'INVALID_EVENT' });
      }
      checked = this.validate ? parseEvent(event) : event;
      serializeEvent(checked, this.limits);
    } catch (error) {
      return new Promise((_resolve, reject) => this.refuse(event, error, 'DELIVERY_FAILED', reject));
    }
    return this.deliver(checked);
  }

  /**
   * Like `send` for events already validated by a `RunEmitter` (no second schema pass).
   * Routing, ordering, retries and buffering are the same.
   */
  deliver(event: AgentEvent): Promise<DeliveryReceipt> {
    return new Promise((resolve, reject) => {
      this.enqueue(event, (error, receipt) => (error ? reject(error) : resolve(receipt!)));
    });
  }

  /**
   * The callback form of `deliver`, without a promise per event. `settle` is called exactly once:
   * with the receipt, or with a `DeliveryError`. Returns the number of events now queued for the
   * run (compare with `highWaterMark` for backpressure). An event that was not serialized where
   * it was built is serialized here (and refused when it is not JSON).
   */
  enqueue(event: AgentEvent, settle: DeliveryCallback): number {
    if (!hasEventJson(event)) {
      try {
        serializeEvent(event, this.limits);
      } catch (error) {
        this.refuse(event, error, 'DELIVERY_FAILED', settle);
        return 0;
      }
    }
    return this.enqueueSerialized(event, settle);
  }

  /**
   * `enqueue` for an event a `RunEmitter` built and serialized (the agents' hot path).
   * @internal
   */
  enqueueSerialized(event: AgentEvent, settle: DeliveryCallback): number {
    let state = this.currentState;
    // While close() drains, the runs it cancelled still get their last events (open tool calls
    // closed, agent_completed) into the log; nothing else is accepted.
    if (state === 'closed' && this.draining !== undefined && this.inFlight.has(event.runId)) state = this.draining;
    if (state === 'closed' || state === 'failed') {
      this.refuse(event, new StateError(state === 'closed' ? 'BRIDGE_CLOSED' : 'BRIDGE_FAILED', `The bridge is ${state}`), 'BRIDGE_UNAVAILABLE', settle);
      return 0;
    }
    let queue = this.queues.get(event.runId);
    // Routing is checked once per run (and re-checked cheaply per event against the queue's route).
    const routeError =
      queue && !queue.completed
        ? queue.threadId === event.threadId && queue.userId === event.userId
          ? undefined
          : routeMismatch(this.counters, event, queue.threadId)
        : checkRoute(this.registry, this.counters, event);
    if (routeError) {
      this.refuse(event, routeError, 'DELIVERY_FAILED', settle);
      return 0;
    }
    queue ??= this.queues.open(event);
    // Bounded in every state: a run that emits faster than the transport accepts (or while it is
    // being retried) cannot grow memory. The terminal event always fits, so clients learn how the run ended.
    const queued = queue.items.length - queue.head;
    const full = queued >= this.maxBufferedPerRun || (state === 'degraded' && this.counters.buffered >= this.maxBufferedTotal);
    if (full && event.type !== 'agent_completed') {
      if (queued === 0) this.queues.delete(event.runId);
      this.refuse(event, bufferFull(state === 'degraded'), 'BUFFER_FULL', settle);
      return queued;
    }
    this.counters.emitted++;
    if (state === 'active' && queued === 0 && !queue.pumping && this.transport.sendSync && this.deliverInline(queue, event, settle)) return 0;
    const pending: Pending = { event, enqueuedAt: performance.now(), settled: false, settle };
    queue.items.push(pending);
    if (state === 'degraded') this.queues.hold(pending);
    if (!queue.pumping) void pump(this.pumpHost, queue);
    return queue.items.length - queue.head;
  }

  /**
   * In-process fast path: nothing of this run is queued, so handing the event to a synchronous
   * transport right now keeps the run's order and skips the queue, the pump and a promise. Returns
   * false when the transport threw: the caller then queues the event and the pump retries it as usual.
   */
  private deliverInline(queue: RunQueue, event: AgentEvent, settle: DeliveryCallback): boolean {
    // The latency of a synchronous send is timed on one in 16 (two clock reads cost about a third of
    // the send itself); every delivery is recorded, those in between with the last timed value.
    const timed = (this.inlineSends++ & 15) === 0;
    const started = timed ? performance.now() : 0;
    try {
      this.transport.sendSync!(event);
    } catch {
      return false;
    }
    if (timed) this.inlineLatency = performance.now() - started;
    if (!queue.sent) {
      queue.sent = true;
      this.registry.delivered(event.runId, event.threadId, event.userId);
    }
    this.counters.delivered++;
    this.counters.latency.record(this.inlineLatency);
    if (event.type === 'agent_completed') {
      queue.completed = true;
      this.queues.delete(queue.runId);
      this.registry.finish(event.runId);
    }
    settle(undefined, 'delivered', event);
    return true;
  }

  /**
   * Stops accepting new runs and events, cancels the agents' runs under way (each ends with
   * `agent_completed` cancelled, after its open tool calls are closed), then drains: what is
   * queued or held (those runs' last events too) keeps being delivered, retried, and while the
   * transport is down probed for recovery, until every cancelled run has ended and nothing is
   * left, or `drainTimeoutMs` passed. What is still queued then is reported undelivered
   * (`UNDELIVERED`), and the transport is closed. A second call returns the same promise.
   */
  close(): Promise<void> {
    this.closing ??= this.drainAndClose();
    return this.closing;
  }

  private async drainAndClose(): Promise<void> {
    const previous = this.currentState;
    // Deliveries go on in the state the bridge was in (degraded: the recovery probes go on too).
    this.draining = previous === 'degraded' || previous === 'failed' ? previous : 'active';
    this.setState('closed');
    for (const cancel of [...this.inFlight.values()]) {
      try {
        cancel();
      } catch {
        // Cancelling one run must not keep the others from ending.
      }
    }
    if (!this.isDrained()) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.drainTimeoutMs);
        this.drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    this.drained = undefined;
    this.draining = undefined;
    // A run still under way now (its terminal event not handed over in time) gets nothing more in.
    this.inFlight.clear();
    this.giveUpOnQueued('Bridge closed before the event was delivered');
    await this.transport.close();
  }

  /** Nothing left for `close()` to wait for. */
  private isDrained(): boolean {
    return this.inFlight.size === 0 && this.queues.pendingCount() === 0;
  }

  private checkDrained(): void {
    if (this.drained && this.isDrained()) this.drained();
  }

  private refuse(event: AgentEvent, cause: unknown, code: CodeOf<'DeliveryError'>, settle: DeliveryCallback): void {
    const error = isInstance(cause, DeliveryError) ? cause : undelivered(event, messageOf(cause), code, cause);
    this.counters.failed++;
    this.emitDeliveryError(error, event);
    settle(error, undefined, event);
  }

  private degrade(): void {
    const state = this.working;
    if (state !== 'active' && state !== 'initializing') return;
    this.setWorking('degraded');
    this.queues.holdAll(this.maxBufferedTotal);
    this.recovery.start();
  }

  private recover(): void {
    if (this.working !== 'degraded') return;
    this.recovery.stop();
    this.setWorking('active');
    this.recovery.recovered();
  }

  private fail(): void {
    this.setWorking('failed');
    const reason = `Transport down for more than ${this.failAfterMs} ms`;
    this.giveUpOnQueued(reason, new StateError('BRIDGE_FAILED', reason));
    // close() waiting for the drain: nothing is left to wait for.
    this.checkDrained();
  }

  /** Changes the state deliveries follow: the public state, or while `close()` drains, only the drain's. */
  private setWorking(next: BridgeState): void {
    if (this.draining !== undefined) this.draining = next;
    else this.setState(next);
  }

  /** Reports every queued event undelivered (with `cause`, when given), drops the queues and lets stalled pumps see the end. */
  private giveUpOnQueued(reason: string, cause?: StateError): void {
    this.recovery.stop();
    this.queues.failAll(reason, cause);
    this.recovery.wakeAll();
  }

  private emitDeliveryError(error: DeliveryError, event: AgentEvent): void {
    try {
      this.emit('delivery_error', error, event);
    } catch {
      // A throwing observer must not break delivery.
    }
  }

  private setState(next: BridgeState): void {
    const previous = this.currentState;
    if (previous === next) return;
    this.currentState = next;
    try {
      this.emit('state', next, previous);
    } catch {
      // A throwing observer must not break the state machine.
    }
  }
}

/**
 * A transport has `send` and `close` (`bridge.close()` calls it), and its optional members, when
 * present, are functions (a `health: 5` failed `initialize()` with a TypeError).
 */
function checkTransport(check: ReturnType<typeof checker>, transport: unknown): void {
  const methods = transport as Record<string, unknown> | null;
  if (typeof transport !== 'object' || methods === null || typeof methods.send !== 'function' || typeof methods.close !== 'function') {
    throw check.fail('transport', `must be a Transport with send(event) and close() (got ${shown(transport)})`);
  }
  for (const name of ['sendSync', 'health', 'hasRun'] as const) if (methods[name] !== undefined) check.fn(`transport.${name}`, methods[name]);
}

/** The methods of a `ThreadRegistry` the bridge calls (a registry of another copy of the package passes too). */
const REGISTRY_METHODS = ['register', 'markStarted', 'resolve', 'delivered', 'forget', 'finish', 'isUsed'] as const;

function isRegistryLike(value: unknown): value is ThreadRegistry {
  if (value instanceof ThreadRegistry) return true;
  if (typeof value !== 'object' || value === null) return false;
  const methods = value as Record<string, unknown>;
  return REGISTRY_METHODS.every((name) => typeof methods[name] === 'function');
}
