import { AsyncLocalStorage } from 'node:async_hooks';
import type { RunEmitter } from '../bridge/run-emitter.js';
import type { DeliveryError } from '../errors/index.js';
import type { AgentEvent, Usage } from '../events/schema.js';
import type { RunDelivery } from './emit.js';
import type { RunTerminal } from './run-options.js';

/** What `execute` (and tools) know about the run they serve. */
export interface RunContext {
  readonly runId: string;
  readonly threadId: string;
  readonly userId: string;
  /** Name of the agent running. */
  readonly agent: string;
  /**
   * Aborted when the run is cancelled: the caller's signal aborts (with its reason), the run queue
   * cancels it, or its bridge closes (`AbortError` caused by `BRIDGE_CLOSED`). Pass it to fetch(),
   * model calls, child processes. A listener added to it that throws (or rejects) is reported as
   * the agent's `listener_error` (`LISTENER_FAILED`) instead of crashing the process.
   */
  readonly signal: AbortSignal;
  readonly metadata: Readonly<Record<string, unknown>>;
}

export interface OpenToolCall {
  tool: string;
  startedAt: number;
  /** Aborts the tool's own signal (timeout or run abort); absent when nothing can abort the call. */
  controller: AbortController | undefined;
}

/** Run-scoped state. Lives in AsyncLocalStorage, never on the agent instance. */
export interface RunState {
  readonly owner: object;
  readonly ctx: RunContext;
  readonly emitter: RunEmitter;
  readonly openTools: Map<string, OpenToolCall>;
  readonly deliveryErrors: DeliveryError[];
  /** The bridge's backpressure threshold; undefined when the run has no bridge (local observation only). */
  readonly highWaterMark: number | undefined;
  /** Called for each event of the run the bridge could neither deliver nor buffer. */
  readonly onDeliveryError: (error: DeliveryError, event: AgentEvent) => void;
  /** How the run's events settle (one callback for all of them). */
  readonly delivery: RunDelivery;
  /** Drops the run from its bridge when the log refused its `agent_started` (nothing of it is stored). */
  readonly abandon?: (() => void) | undefined;
  /** Told what the run's `agent_completed` carries, once, when it is built (`RUN_TERMINAL`). */
  readonly onTerminal?: ((terminal: RunTerminal) => void) | undefined;
  /** Mirrors `ctx.signal.aborted` (set by `abortRun`). */
  aborted: boolean;
  /**
   * The controller of `ctx.signal` when the run has a bridge or was given a signal (its own signal,
   * following the caller's; its listeners contained): `bridge.close()` aborts it. Undefined with
   * neither: `ctx.signal` is `NEVER_ABORTED`.
   */
  readonly controller: AbortController | undefined;
  /** The caller passed a signal: each tool call then gets a controller of its own, aborted when the run closes the call. */
  readonly callerSignal: boolean;
  /** Where a throwing listener of the run's signals (`ctx.signal`, a tool call's) is reported (`listener_error`). */
  readonly signalListenerFailed: (error: unknown) => void;
  /** `bridge.close()` tracks this run (`trackRun`): it cancels it and waits for its terminal event. */
  tracked?: boolean;
  /** Token usage reported with `reportUsage`, summed. */
  usage?: Usage;
  /** The answer message `streamText` writes to, and the seq of its last delta (it continues while that is the run's last event). */
  answer?: { messageId: string; seq: number };
}

export const runStorage = new AsyncLocalStorage<RunState>();
