import type { AgentEvent } from '../events/schema.js';

export interface TransportHealth {
  ok: boolean;
  /** Human-readable state, e.g. "connected", "redis unreachable". */
  detail?: string;
}

/**
 * The integrator's interface: where the bridge sends events. `send` resolves once the event
 * is accepted (stored or handed to the network); it rejects on failure, and the bridge retries.
 * Throw an `AgentwireError` with `retryable: false` for failures that repeating cannot fix.
 */
export interface Transport {
  send(event: AgentEvent): Promise<void>;
  /**
   * Optional: accept the event synchronously, or throw. In-process transports implement it so the
   * bridge can deliver a run's event inline when nothing of that run is queued (no promise per event).
   */
  sendSync?(event: AgentEvent): void;
  close(): Promise<void>;
  health?(): TransportHealth | Promise<TransportHealth>;
  /**
   * Optional: whether events of run `runId` are retained (the id is in use). `run()` refuses such
   * a run id (`RUN_ID_CONFLICT`). The built-in logs forget a run with its last retained event.
   */
  hasRun?(runId: string): boolean | Promise<boolean>;
}

/** One event in a thread's ordered log, with the opaque cursor that points just after it. */
export interface LogEntry {
  readonly cursor: string;
  readonly event: AgentEvent;
  /**
   * `JSON.stringify(event)` when the log already has it (Redis stores events serialized). Gateways
   * may also fill it while they write one tick's frames and clear it after, so every connection shares
   * one serialization without the log keeping a second copy of each retained event.
   */
  json?: string;
}

export type HistoryGapReason =
  /** The log was recreated (new process, recreated stream): the cursor's epoch is gone. */
  | 'epoch_changed'
  /** Retention trimmed entries after the cursor. */
  | 'trimmed'
  /** The cursor is malformed or points past the end of the log. */
  | 'unknown_cursor';

export interface HistoryGap {
  threadId: string;
  /** The cursor the subscriber asked to resume after. */
  requested: string;
  reason: HistoryGapReason;
  message: string;
}

export interface SubscribeRequest {
  userId: string;
  threadId: string;
  /** Resume after this cursor. Absent: replay everything the log retains, then follow. */
  after?: string | undefined;
}

export interface LogListener {
  /** Live entries, in log order, appended after the subscription was made. */
  onEntries(entries: readonly LogEntry[]): void;
  /** The source ended the subscription (log closed, evicted, or failed). */
  onClose?(reason?: Error): void;
}

export interface Subscription {
  close(): void;
}

export type SubscribeResult =
  | {
      status: 'subscribed';
      /** Replayed entries after the requested cursor, then live ones go to the listener. */
      replay: LogEntry[];
      /** Cursor of the newest entry at subscription time (null for an empty thread). */
      cursor: string | null;
      subscription: Subscription;
    }
  | { status: 'history_gap'; gap: HistoryGap };

/**
 * Read side of a transport: per-thread ordered logs with resume. Gateways (WebSocket, SSE)
 * serve clients from an `EventLog`. Implementations must refuse (AuthError) a subscription to a
 * thread owned by another user and must only ever hand a listener events of its own user.
 * Resume is all or nothing: a cursor that cannot be honoured completely yields `history_gap`.
 */
export interface EventLog {
  subscribe(request: SubscribeRequest, listener: LogListener): Promise<SubscribeResult>;
  /** Owner of a thread if known (undefined for unknown threads). */
  ownerOf(threadId: string): Promise<string | undefined>;
}
