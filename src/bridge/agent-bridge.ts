import { EventEmitter } from 'eventemitter3';
import pRetry, { AbortError as StopRetrying } from 'p-retry';
import { AgentwireError, DeliveryError, StateError, ThreadResolutionError, TransportError, ValidationError, type CodeOf } from '../errors/index.js';
import { parseEvent } from '../events/parse.js';
import type { AgentEvent, EventIdentity } from '../events/schema.js';
import { ThreadRegistry } from '../ids/thread-registry.js';
import { MemoryTransport } from '../transport/memory/memory-transport.js';
import type { Transport, TransportHealth } from '../transport/types.js';
import { BridgeCounters, type BridgeMetrics } from './metrics.js';

export type BridgeState = 'uninitialized' | 'initializing' | 'active' | 'degraded' | 'failed' | 'closed';

/** How `send` settled: handed to the transport, or held in the bounded buffer while it is down. */
export type DeliveryReceipt = 'delivered' | 'buffered';

/** Callback form of a delivery outcome: an error, or the receipt. Called exactly once. */
export type DeliveryCallback = (error: DeliveryError | undefined, receipt: DeliveryReceipt | undefined, event: AgentEvent) => void;

export interface RetryOptions {
  /** Retries after the first attempt. Default 3. */
  retries?: number;
  /** Delay before the first retry. Default 100 ms. */
  minTimeoutMs?: number;
  /** Growth of the delay per retry. Default 2. */
  factor?: number;
  /** Upper bound of one delay. Default 2,000 ms. */
  maxTimeoutMs?: number;
  /** Multiply each delay by a random factor in [1, 2). Default true. */
  randomize?: boolean;
}

export interface AgentBridgeOptions {
  /** Where events go. Default: a new `MemoryTransport`. */
  transport?: Transport;
  /** Run → thread → user map. Default: a new `ThreadRegistry`. */
  registry?: ThreadRegistry;
  retry?: RetryOptions;
  /** Events queued or held per run (in flight, being retried, or buffered while the transport is down); the terminal event always fits. Default 1,000. */
  maxBufferedPerRun?: number;
  /** Events held across all runs while the transport is down. Default 100,000. */
  maxBufferedTotal?: number;
  /** First delay between recovery probes while degraded (doubles up to 10 s). Default 500 ms. */
  recoveryIntervalMs?: number;
  /** Degraded longer than this → `failed`, buffered events are reported undelivered. Default 5 min. */
  failAfterMs?: number;
  /** How long `close()` waits for queued events to be delivered. Default 5 s. */
  drainTimeoutMs?: number;
  /** Validate events given to `send` against the schema. Default true. */
  validate?: boolean;
  /**
   * Backpressure: once a run has more than this many events queued, agents' `think()` /
   * `callTool()` wait for delivery instead of only for acceptance. Default 64.
   */
  highWaterMark?: number;
}

interface Pending {
  event: AgentEvent;
  enqueuedAt: number;
  settled: boolean;
  settle: DeliveryCallback;
  /**
   * `close()` (after its drain timeout) or `fail()` reported this event undelivered while the run's
   * pump was still sending or retrying it. The pump must then stop: no further attempt (nothing is
   * sent after being reported undelivered) and no second report (it would count the event twice in
   * `failed`, emit `delivery_error` twice and drive the `buffered` gauge below zero).
   */
  abandoned?: boolean;
  /** Set while this event waits between retries: aborting it cancels the wait (and its timer) at once. */
  retrying?: AbortController;
}

/** One run's ordered send queue: events leave strictly in seq order, one at a time. */
interface RunQueue {
  runId: string;
  /** Thread and user the run was routed to when its queue was created; later events must match. */
  threadId: string;
  userId: string;
  items: Pending[];
  head: number;
  pumping: boolean;
  /** agent_completed has left the queue: nothing else may follow, the queue can go. */
  completed: boolean;
}

/** Past this many queues, idle queues of runs that never completed are swept (integrator-sent events). */
const MAX_IDLE_QUEUES = 10_000;

interface BridgeEvents {
  state: (next: BridgeState, previous: BridgeState) => void;
  delivery_error: (error: DeliveryError, event: AgentEvent) => void;
}

const MAX_RECOVERY_INTERVAL_MS = 10_000;

/**
 * Per-process delivery engine between agents and a transport. Keeps per-run order through
 * retries, holds events (bounded) while the transport is down, flushes them in order on
 * recovery, and never drops an event silently: it is delivered, buffered, or its `send`
 * rejects with a `DeliveryError` that is counted and emitted as `delivery_error`.
 */
export class AgentBridge extends EventEmitter<BridgeEvents> {
  readonly transport: Transport;
  readonly registry: ThreadRegistry;
  private currentState: BridgeState = 'uninitialized';
  private initPromise: Promise<void> | undefined;
  private readonly queues = new Map<string, RunQueue>();
  private readonly counters = new BridgeCounters();
  private readonly retry: Required<RetryOptions>;
  private readonly maxBufferedPerRun: number;
  private readonly maxBufferedTotal: number;
  private readonly recoveryIntervalMs: number;
  private readonly failAfterMs: number;
  private readonly drainTimeoutMs: number;
  private readonly validate: boolean;
  readonly highWaterMark: number;
  /** Queues whose head failed while degraded, waiting for a probe to let them try again. */
  private stalled: Array<() => void> = [];
  private probeTimer: NodeJS.Timeout | undefined;
  private probeDelay: number;
  private degradedSince = 0;
  private drained: (() => void) | undefined;

  constructor(options: AgentBridgeOptions = {}) {
    super();
    this.transport = options.transport ?? new MemoryTransport();
    this.registry = options.registry ?? new ThreadRegistry();
    this.retry = {
      retries: options.retry?.retries ?? 3,
      minTimeoutMs: options.retry?.minTimeoutMs ?? 100,
      factor: options.retry?.factor ?? 2,
      maxTimeoutMs: options.retry?.maxTimeoutMs ?? 2_000,
      randomize: options.retry?.randomize ?? true,
    };
    this.maxBufferedPerRun = options.maxBufferedPerRun ?? 1_000;
    this.maxBufferedTotal = options.maxBufferedTotal ?? 100_000;
    this.recoveryIntervalMs = options.recoveryIntervalMs ?? 500;
    this.probeDelay = this.recoveryIntervalMs;
    this.failAfterMs = options.failAfterMs ?? 300_000;
    this.drainTimeoutMs = options.drainTimeoutMs ?? 5_000;
    this.validate = options.validate ?? true;
    this.highWaterMark = options.highWaterMark ?? 64;
  }

  get state(): BridgeState {
    return this.currentState;
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
        if (this.currentState === 'initializing') this.setState('failed');
        throw error instanceof AgentwireError
          ? error
          : new TransportError('Transport health check failed', { cause: error });
      }
    })();
    return this.initPromise;
  }

  async health(): Promise<{ state: BridgeState; transport: TransportHealth | undefined; buffered: number; activeRuns: number }> {
    let transport: TransportHealth | undefined;
    try {
      transport = await this.transport.health?.();
    } catch (error) {
      transport = { ok: false, detail: error instanceof Error ? error.message : String(error) };
    }
    return { state: this.currentState, transport, buffered: this.counters.buffered, activeRuns: this.activeRunCount() };
  }

  metrics(): BridgeMetrics {
    return this.counters.snapshot(this.currentState, this.activeRunCount());
  }

  private activeRunCount(): number {
    let activeRuns = 0;
    for (const queue of this.queues.values()) if (!queue.completed) activeRuns++;
    return activeRuns;
  }

  /**
   * Registers a run before its first event (run → thread → user). Throws `AuthError` when the
   * thread belongs to another user, so a run can never write into someone else's thread.
   */
  openRun(identity: EventIdentity): void {
    this.registry.register(identity.runId, identity.threadId, identity.userId);
  }

  /** Validates, routes and queues an event. See the class comment for how it settles. */
  send(event: AgentEvent): Promise<DeliveryReceipt> {
    let checked: AgentEvent;
    try {
      checked = this.validate ? parseEvent(event) : event;
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
   * The callback form of `deliver`, without a promise per event (the agents' hot path).
   * `settle` is called exactly once: with the receipt, or with a `DeliveryError`. Returns the
   * number of events now queued for the run (compare with `highWaterMark` for backpressure).
   */
  enqueue(event: AgentEvent, settle: DeliveryCallback): number {
    const state = this.currentState;
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
          : this.routeMismatch(event, queue.threadId)
        : this.checkRoute(event);
    if (routeError) {
      this.refuse(event, routeError, 'DELIVERY_FAILED', settle);
      return 0;
    }
    if (!queue) {
      if (this.queues.size >= MAX_IDLE_QUEUES) this.sweepIdleQueues();
      queue = { runId: event.runId, threadId: event.threadId, userId: event.userId, items: [], head: 0, pumping: false, completed: false };
      this.queues.set(event.runId, queue);
    }
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
    if (state === 'degraded') this.hold(pending);
    if (!queue.pumping) void this.pump(queue);
    return queue.items.length - queue.head;
  }

  /**
   * In-process fast path: nothing of this run is queued, so handing the event to a synchronous
   * transport right now keeps the run's order and skips the queue, the pump and a promise. Returns
   * false when the transport threw: the caller then queues the event and the pump retries it as usual.
   */
  private deliverInline(queue: RunQueue, event: AgentEvent, settle: DeliveryCallback): boolean {
    const started = performance.now();
    try {
      this.transport.sendSync!(event);
    } catch {
      return false;
    }
    this.counters.delivered++;
    this.counters.latency.record(performance.now() - started);
    if (event.type === 'agent_completed') {
      queue.completed = true;
      this.queues.delete(queue.runId);
      this.registry.finish(event.runId);
    }
    settle(undefined, 'delivered', event);
    return true;
  }

  /** Stops accepting events, waits up to `drainTimeoutMs` for queued ones, then closes the transport. */
  async close(): Promise<void> {
    if (this.currentState === 'closed') return;
    const wasDegraded = this.currentState === 'degraded';
    this.setState('closed');
    if (this.pendingCount() > 0 && !wasDegraded) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.drainTimeoutMs);
        this.drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    this.drained = undefined;
    this.giveUpOnQueued('Bridge closed before the event was delivered');
    await this.transport.close();
  }

  private checkRoute(event: AgentEvent): AgentwireError | undefined {
    let route;
    try {
      if (event.type === 'agent_started') this.registry.register(event.runId, event.threadId, event.userId);
      route = this.registry.resolve(event.runId);
    } catch (error) {
      if (error instanceof ThreadResolutionError) this.counters.threadResolutionFailures++;
      return error instanceof AgentwireError ? error : new ValidationError(String(error));
    }
    if (route.threadId !== event.threadId || (route.userId !== undefined && route.userId !== event.userId)) {
      return this.routeMismatch(event, route.threadId);
    }
    return undefined;
  }

  private routeMismatch(event: AgentEvent, threadId: string): ThreadResolutionError {
    this.counters.threadResolutionFailures++;
    return new ThreadResolutionError(
      `Event ${event.id} names thread "${event.threadId}" of user "${event.userId}", but run ${event.runId} belongs to thread "${threadId}" or to another user`,
      { details: { runId: event.runId } },
    );
  }

  private refuse(event: AgentEvent, cause: unknown, code: CodeOf<'DeliveryError'>, settle: DeliveryCallback): void {
    const error =
      cause instanceof DeliveryError
        ? cause
        : undelivered(event, messageOf(cause), code, cause);
    this.counters.failed++;
    this.emitDeliveryError(error, event);
    settle(error, undefined, event);
  }

  private async pump(queue: RunQueue): Promise<void> {
    queue.pumping = true;
    if (this.currentState === 'uninitialized') void this.initialize().catch(() => undefined);
    if (this.currentState === 'initializing') await this.initPromise?.catch(() => undefined);
    while (queue.head < queue.items.length) {
      const pending = queue.items[queue.head]!;
      let outcome: 'delivered' | 'stalled' | DeliveryError;
      if (this.currentState === 'active') {
        // Hot path: one await per event; retries only once a send has failed.
        try {
          await this.transport.send(pending.event);
          outcome = 'delivered';
        } catch (error) {
          outcome = await this.attempt(pending, error);
        }
      } else {
        outcome = await this.attempt(pending);
      }
      // close()/fail() already reported this event and the rest of the run undelivered: stop here.
      if (pending.abandoned) break;
      if (outcome === 'stalled') {
        // The transport is down: wait for a recovery probe (or close), then try the same head again.
        if (this.isStopped()) break;
        await new Promise<void>((resume) => this.stalled.push(resume));
        if (this.isStopped()) break;
        continue;
      }
      queue.items[queue.head++] = undefined as unknown as Pending;
      if (outcome === 'delivered') {
        this.counters.delivered++;
        this.counters.latency.record(performance.now() - pending.enqueuedAt);
        if (pending.settled) this.counters.addBuffered(-1);
        else {
          pending.settled = true;
          pending.settle(undefined, 'delivered', pending.event);
        }
      } else {
        this.failPending(pending, outcome);
      }
      if (pending.event.type === 'agent_completed') {
        queue.completed = true;
        this.registry.finish(pending.event.runId);
      }
    }
    queue.pumping = false;
    if (queue.head >= queue.items.length) {
      // Reuse the queue for the run's next event (agents await each event); drop it once the run is over.
      queue.items = [];
      queue.head = 0;
      if (queue.completed || this.isStopped()) this.queues.delete(queue.runId);
      if (this.drained && this.pendingCount() === 0) this.drained();
    }
  }

  private pendingCount(): number {
    let count = 0;
    for (const queue of this.queues.values()) count += queue.items.length - queue.head;
    return count;
  }

  private sweepIdleQueues(): void {
    for (const [runId, queue] of this.queues) {
      if (!queue.pumping && queue.head >= queue.items.length) this.queues.delete(runId);
    }
  }

  private isStopped(): boolean {
    return this.currentState === 'closed' || this.currentState === 'failed';
  }

  /**
   * One delivery: with p-retry while active (after `firstError` when the first attempt was already
   * made), a single probe attempt while degraded.
   */
  private async attempt(pending: Pending, firstError?: unknown): Promise<'delivered' | 'stalled' | DeliveryError> {
    const { event } = pending;
    try {
      if (this.currentState === 'degraded') {
        await this.transport.send(event);
        this.recover();
      } else {
        await this.sendWithRetry(pending, firstError);
      }
      return 'delivered';
    } catch (error) {
      if (error instanceof AgentwireError && !error.retryable) {
        return new DeliveryError(`Event ${describe(event)} was refused by the transport: ${error.message}`, {
          cause: error,
        });
      }
      this.degrade();
      return 'stalled';
    }
  }

  private async sendWithRetry(pending: Pending, firstError?: unknown): Promise<void> {
    const { event } = pending;
    if (firstError === undefined) {
      try {
        // Most sends succeed first time; p-retry only pays for itself on failure.
        await this.transport.send(event);
        return;
      } catch (error) {
        firstError = error;
      }
    }
    if (firstError instanceof AgentwireError && !firstError.retryable) throw firstError;
    if (this.retry.retries <= 0) throw firstError;
    let first = true;
    // Only failing sends get here: a controller per retried event lets close()/fail() cancel its
    // backoff timer, so no retry timer keeps the process alive after close().
    const retrying = (pending.retrying = new AbortController());
    try {
      await pRetry(
        async () => {
          if (first) {
            first = false;
            // The fast path was the first attempt; wait the first backoff before trying again.
            await delay(backoff(0, this.retry), retrying.signal);
          }
          // Reported undelivered by close()/fail() while waiting for this retry: do not send it anymore.
          if (pending.abandoned) throw new StopRetrying('the bridge gave up on this event');
          this.counters.retried++;
          await this.transport.send(event);
        },
        {
          retries: this.retry.retries - 1,
          minTimeout: this.retry.minTimeoutMs * this.retry.factor,
          factor: this.retry.factor,
          maxTimeout: this.retry.maxTimeoutMs,
          randomize: this.retry.randomize,
          signal: retrying.signal,
          shouldRetry: ({ error }) => !pending.abandoned && !(error instanceof AgentwireError && !error.retryable),
        },
      );
    } finally {
      pending.retrying = undefined;
    }
  }

  private degrade(): void {
    if (this.currentState !== 'active' && this.currentState !== 'initializing') return;
    this.degradedSince = Date.now();
    this.setState('degraded');
    // Everything queued is now held: settle its promise as buffered so agents are not blocked.
    // Events queued while the first sends were still being retried count toward `maxBufferedTotal`
    // like the ones that come later (without this, many concurrent runs each queueing up to
    // `highWaterMark` before the bridge knew the transport was down were all held, far past the
    // bound). Past it, the newer ones are refused with BUFFER_FULL, exactly as at enqueue time;
    // never a run's in-flight head and never its terminal event.
    for (const queue of this.queues.values()) {
      let kept = queue.head;
      for (let i = queue.head; i < queue.items.length; i++) {
        const pending = queue.items[i]!;
        const overflow = i > queue.head && !pending.settled && pending.event.type !== 'agent_completed' && this.counters.buffered >= this.maxBufferedTotal;
        if (overflow) {
          const cause = bufferFull(true);
          this.failPending(pending, undelivered(pending.event, cause.message, 'BUFFER_FULL', cause));
          continue;
        }
        this.hold(pending);
        queue.items[kept++] = pending;
      }
      queue.items.length = kept;
    }
    this.scheduleProbe();
  }

  private hold(pending: Pending): void {
    if (pending.settled) return;
    pending.settled = true;
    this.counters.addBuffered(1);
    pending.settle(undefined, 'buffered', pending.event);
  }

  private recover(): void {
    if (this.currentState !== 'degraded') return;
    this.stopProbing();
    this.probeDelay = this.recoveryIntervalMs;
    this.setState('active');
    this.wakeStalled();
  }

  private scheduleProbe(): void {
    if (this.probeTimer) return;
    this.probeTimer = setTimeout(() => {
      this.probeTimer = undefined;
      if (this.currentState !== 'degraded') return;
      if (Date.now() - this.degradedSince >= this.failAfterMs) {
        this.fail();
        return;
      }
      // Let one stalled queue try its head; its success recovers everyone.
      this.stalled.shift()?.();
      this.probeDelay = Math.min(this.probeDelay * 2, MAX_RECOVERY_INTERVAL_MS);
      this.scheduleProbe();
    }, this.probeDelay);
  }

  private stopProbing(): void {
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
  }

  private fail(): void {
    this.setState('failed');
    this.giveUpOnQueued(`Transport down for more than ${this.failAfterMs} ms`);
  }

  /** Reports every queued event undelivered, drops the queues and lets stalled pumps see the end. */
  private giveUpOnQueued(reason: string): void {
    this.stopProbing();
    for (const queue of this.queues.values()) this.failQueue(queue, reason);
    this.queues.clear();
    this.wakeStalled();
  }

  private wakeStalled(): void {
    const wake = this.stalled;
    this.stalled = [];
    for (const resume of wake) resume();
  }

  private failQueue(queue: RunQueue, reason: string): void {
    for (let i = queue.head; i < queue.items.length; i++) {
      const pending = queue.items[i]!;
      pending.abandoned = true;
      pending.retrying?.abort(new StateError('BRIDGE_GAVE_UP', 'The bridge gave up on this event'));
      this.failPending(pending, undelivered(pending.event, reason, 'UNDELIVERED'));
    }
    queue.head = queue.items.length;
  }

  private failPending(pending: Pending, error: DeliveryError): void {
    this.counters.failed++;
    if (pending.settled) this.counters.addBuffered(-1);
    this.emitDeliveryError(error, pending.event);
    if (!pending.settled) {
      pending.settled = true;
      pending.settle(error, undefined, pending.event);
    }
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

function backoff(retry: number, options: Required<RetryOptions>): number {
  const random = options.randomize ? Math.random() + 1 : 1;
  return Math.min(options.maxTimeoutMs, Math.round(random * options.minTimeoutMs * options.factor ** retry));
}

/** Resolves after `ms`; rejects with the signal's reason (and clears the timer) as soon as it aborts. */
function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function describe(event: AgentEvent): string {
  return `${event.type} #${event.seq} of run ${event.runId}`;
}

/** The error of an event the bridge gives up on (never delivered), with why. */
function undelivered(event: AgentEvent, reason: string, code: CodeOf<'DeliveryError'>, cause?: unknown): DeliveryError {
  return new DeliveryError(`Event ${describe(event)} was not delivered: ${reason}`, cause === undefined ? { code } : { cause, code });
}

/** Why an event did not fit: the held buffer while degraded, or the run's own queue otherwise. */
function bufferFull(degraded: boolean): Error {
  return new Error(degraded ? 'the transport is down and the buffer is full' : 'the run has too many events queued');
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
