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
  /**
   * The event as the log holds it: `json` parsed back (the built-in logs give exactly that, live
   * entries included), never the object the agent built. Readers that map events to another
   * protocol (AG-UI, useChat, run streams) read this, so what they send is what the log holds,
   * within its limits, and the same live as on replay. A log of your own should do the same
   * (parse `json` when `event` is read); share one entry, and one parse, among subscribers.
   * Treat it as read-only: it is shared by every reader of the entry.
   */
  readonly event: AgentEvent;
  /**
   * The event's JSON (`eventJson(event)`), made once when the event was appended; the exact text a
   * gateway writes for every connection (the Redis log reads it from the stream).
   */
  readonly json: string;
  /**
   * Optional, for readers that route or check entries without reading `event`: the event's
   * `userId`, `threadId`, `runId`, `id` and `type` as the log recorded them, each equal to the
   * event's own. The built-in memory log gives them from its own records (a thread's owner, which
   * its append checks against every event; the entry's run; the id and type read from the stored
   * JSON), so an entry is routed, checked against its subscriber and written without parsing its
   * event. Readers fall back to `event` for a log that leaves them out.
   */
  readonly userId?: string;
  readonly threadId?: string;
  readonly runId?: string;
  readonly eventId?: string;
  readonly eventType?: string;
}

export type HistoryGapReason =
  /** The log was recreated (new process, a recreated or expired stream): the cursor's epoch is gone. */
  | 'epoch_changed'
  /**
   * Retention dropped entries after the cursor: trimmed (by events or bytes), or the thread's
   * whole log dropped (idle past its TTL, over `maxThreads`) and perhaps started anew.
   */
  | 'trimmed'
  /**
   * The cursor is not one this log issued for this thread: malformed, forged, of another thread,
   * or past the end of the log.
   */
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
  /**
   * Optional: one live entry, the same as `onEntries([entry])` (a log may call it instead, so
   * that the common case of one event per append allocates no array).
   */
  onLiveEntry?(entry: LogEntry): void;
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
  /**
   * Owner of a thread if known (undefined for unknown threads). A transport that has `ownerOf`
   * must also refuse, in `send`, an event for a thread owned by another user (a `TransportError`
   * that is not retryable, as the built-in logs do with `THREAD_OWNER_MISMATCH`):
   * an `AgentBridge` on such a transport leaves that check to it for a thread none of its own runs
   * has delivered to yet (see `ThreadRegistryOptions.claimOnRegister`).
   */
  ownerOf(threadId: string): Promise<string | undefined>;
}
