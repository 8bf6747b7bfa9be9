import { AuthError, HistoryGapError, type AgentwireError, type ErrorCode } from '../../errors/index.js';
import { threadForbidden } from '../../errors/thread-forbidden.js';
import type { AgentEvent } from '../../events/schema.js';
import type { EventLog, LogEntry } from '../../transport/types.js';
import type { TrackedConnection } from '../connections.js';
import { SERVER_ENDINGS, refusalOf } from '../endings.js';
import { Follower, type FollowResult } from '../follower.js';
import type { SseSink } from '../sse/session.js';
import type { DisconnectReason } from '../stats.js';
import { isInstance } from '../../errors/guards.js';

/**
 * How one surface writes a run's log entries (AG-UI events, AI SDK UI message chunks). A codec
 * is stateful (one per stream): the text of an entry may depend on the entries before it.
 */
export interface RunStreamCodec {
  /**
   * The SSE text of `entry`, without its first `skip` frames (a client resuming inside an entry's
   * frames has them), and how many frames it holds. Advances the mapping state. Throws for an entry
   * that cannot be written (not JSON, a cursor that cannot be an SSE id): the state is left as it
   * was, the entry is skipped, reported and counted. A user hook that threw while mapping (e.g.
   * `answerText`) costs what it would have given, not the entry: its frames are still written (the
   * stream's grammar holds: AG-UI ends with `RUN_ERROR`, useChat with an `error` chunk) and the
   * hook's errors come back as `faults`, reported (not counted as poisoned).
   */
  write(entry: LogEntry, skip?: number): { text: string; frames: number; faults?: unknown[] };
  /**
   * Optional: what a stream resumed after an entry boundary sends before the entries that follow,
   * from the mapping state the entries the client has left (useChat: a streamed text part still
   * open, sent again whole). Called once, after those entries advanced the mapping.
   */
  resumed?(): { text: string; frames: number };
  /** The last message of a stream the server ends before the run completed (AG-UI: `RUN_ERROR`; useChat: an `error` chunk). */
  closing(code: ErrorCode, message: string): { text: string; frames: number };
  /** Written after the run's last entry and after `closing` (useChat: `data: [DONE]`); `''` for none. */
  readonly trailer: string;
  /**
   * Streams that pause at a request (see `RunSurfaceConfig.pauseOnRequest`): the frames that end the
   * stream after `entry`, a `tool_executing` whose call waits for its user (AG-UI: `RUN_FINISHED`
   * with an `interrupt` outcome; useChat: `finish`), or undefined when the surface does not pause
   * at this kind of request (the stream goes on).
   */
  pause?(entry: LogEntry): { text: string; frames: number } | undefined;
  /** The frames that open a stream continuing run `runId` after its user answered (AG-UI: `RUN_STARTED`; useChat: `start`). */
  continuation?(runId: string, threadId: string): { text: string; frames: number };
  /** A comment that keeps idle connections open (parsers skip it). */
  readonly heartbeat: string;
}

/** Why a run stream ended: a `DisconnectReason`, or `completed` (the run's terminal entry was written; not a disconnect). */
export type RunStreamEnd = DisconnectReason | 'completed';

export interface RunStreamHooks {
  /** The stream no longer counts (ended for any reason). Called once. */
  finished(session: RunStreamSession, reason: RunStreamEnd): void;
  /** An entry could not be written: skipped, reported and counted. */
  poisoned(session: RunStreamSession, entry: LogEntry, error: unknown): void;
  /** A user hook threw while an entry was written; the entry was still written (see `RunStreamCodec.write`). */
  hookFailed(session: RunStreamSession, entry: LogEntry, error: unknown): void;
  isolationDrop(session: RunStreamSession): void;
  framesSent(count: number): void;
}

export interface RunStreamLimits {
  maxQueuedChars: number;
  maxQueuedEntries: number;
}

/** What a resuming client already has, and what it gets first (see `planResume`). */
export interface RunStreamPlan {
  runId: string;
  /** Entries the client has: they only advance the mapping. */
  seen: readonly LogEntry[];
  /** When set, the client has only this many frames of the last `seen` entry: the rest of them is written first. */
  skip?: number | undefined;
  /** Retained entries the client does not have, written before the live ones. */
  rest: readonly LogEntry[];
  /** The stream continues the run after its user answered: it opens with the codec's `continuation` frames. */
  continuation?: boolean;
  /** Requests (ids) and calls (tool call ids) known to be answered or closed: the stream does not pause at them. */
  settled?: Iterable<string>;
}

/**
 * What an event settles, so that no stream pauses at it: a request answered (`user_answered`: its
 * request id) or a call closed (`tool_completed`: its tool call id, which ends a waiting call's
 * request too). Undefined for any other event.
 */
export function settledIdOf(event: AgentEvent): string | undefined {
  if (event.type === 'user_answered') return event.data.requestId;
  if (event.type === 'tool_completed') return event.data.toolCallId;
  return undefined;
}

/** Largest piece handed to the sink at once. */
const WRITE_CHUNK_CHARS = 64 * 1024;

/**
 * One HTTP stream of one run (AG-UI `POST`/resume, useChat `POST`/resume), read from the thread's
 * log through the shared `Follower`, written through a surface's codec to a node or web sink. It
 * pulls from the follower only while the sink takes more, so memory is bounded by the follower's
 * bound (past it: cut as a slow consumer; the client resumes). Entries of other runs of the thread
 * are skipped, repeats (seq already written) dropped; after the run's terminal entry the stream
 * ends with the codec's trailer.
 */
export class RunStreamSession implements TrackedConnection {
  private state: 'subscribing' | 'ready' | 'open' | 'ending' | 'closed' = 'subscribing';
  private sink: SseSink | undefined;
  private blocked = false;
  private pumping = false;
  private readonly follower: Follower;
  /** Retained entries the plan put first (then the follower's). */
  private pending: LogEntry[] = [];
  private pendingHead = 0;
  /** Text to write first when the stream opens (the rest of a partly received entry). */
  private opening = '';
  private openingFrames = 0;
  /** The rest of the run's terminal entry is the opening: the stream ends after it. */
  private openingTerminal = false;
  private lastSeq = 0;
  private firstWaiters: Array<() => void> = [];
  private hasEntry = false;
  private terminalTimer: ReturnType<typeof setTimeout> | undefined;
  /** Why it ended (or is ending), once it is. */
  reason: RunStreamEnd | undefined;
  /** The log ended the subscription with an `AuthError`: the thread turned out to be another user's. */
  private forbidden: AuthError | undefined;
  /** The run streamed (known from the start, or once a resume is planned). */
  runId: string | undefined;
  /** Cancels the run this stream started, when its client leaves or does not read (set by the surface). */
  abortRun: ((reason: 'client' | 'slow_consumer') => void) | undefined;
  /** The replay the follower started with (for planning a resume), then emptied. */
  replay: LogEntry[] = [];
  /** End the stream at a request the run waits on that is not known to be answered (`RunStreamCodec.pause`). */
  pauseOnRequest = false;
  /** Request ids and tool call ids known answered or closed (the stream does not pause at those). */
  private readonly settledRequests = new Set<string>();

  constructor(
    readonly userId: string,
    readonly threadId: string,
    runId: string | undefined,
    private readonly codec: RunStreamCodec,
    limits: RunStreamLimits,
    private readonly hooks: RunStreamHooks,
    /** Whether this stream started the run (its client leaving may cancel it). */
    readonly startedRun: boolean,
  ) {
    this.runId = runId;
    this.follower = new Follower(
      { userId, threadId, runId },
      {
        maxQueuedChars: limits.maxQueuedChars,
        maxQueuedEntries: limits.maxQueuedEntries,
        readable: () => this.readable(),
        ended: (why, error) => {
          if (isInstance(error, AuthError)) this.forbidden ??= error;
          if (why === 'overflow') this.cut('slow_consumer');
          else this.close('log_closed');
        },
        isolationDrop: () => hooks.isolationDrop(this),
      },
    );
  }

  get isOpen(): boolean {
    return this.state === 'subscribing' || this.state === 'ready' || this.state === 'open';
  }

  /** Whether the response opened (`open()` was called while the stream was ready). */
  get opened(): boolean {
    return this.sink !== undefined;
  }

  /** Whether an entry of the run is waiting or was written. */
  get started(): boolean {
    return this.hasEntry;
  }

  /**
   * Subscribes; keeps the replay in `replay` for planning. Throws the follower's refusals
   * (`THREAD_FORBIDDEN`, `SUBSCRIBE_FAILED`).
   */
  async subscribe(log: EventLog): Promise<FollowResult> {
    let result: FollowResult;
    try {
      result = await this.follower.start(log);
    } catch (error) {
      if (isInstance(error, AuthError)) this.reason ??= 'error';
      throw error;
    }
    if (result.status === 'following') {
      for (let i = 0; i < result.replayed; i++) {
        const entry = this.follower.next();
        if (entry) this.replay.push(entry);
      }
      if (this.state === 'subscribing') this.state = 'ready';
    } else if (result.status === 'ended') {
      if (isInstance(result.error, AuthError)) this.forbidden ??= result.error;
      this.reason ??= result.reason === 'overflow' ? 'slow_consumer' : result.reason === 'log_closed' ? 'log_closed' : 'error';
      if (this.state === 'subscribing') this.state = 'ending';
    }
    return result;
  }

  /**
   * What a request whose stream ended before it opened is told: 403 `THREAD_FORBIDDEN` when the
   * thread turned out to be another user's (its first event, another user's, ended the
   * subscription: the loser of a race for a new thread), else the refusal of `reason`.
   */
  refusal(): AgentwireError {
    if (this.forbidden) return threadForbidden(this.threadId, this.forbidden);
    return refusalOf(this.reason ?? 'client');
  }

  /** Sets what the client has and what it gets first (a new run: nothing and nothing). */
  plan(plan: RunStreamPlan): void {
    this.runId = plan.runId;
    this.replay = [];
    for (const id of plan.settled ?? []) this.settledRequests.add(id);
    // What the retained entries say is answered or closed already (a request answered elsewhere).
    for (const entry of plan.rest) this.noteSettled(entry);
    const seen = plan.seen;
    const last = plan.skip === undefined ? seen.length : seen.length - 1;
    for (let i = 0; i < last; i++) this.advance(seen[i]!);
    if (plan.skip === undefined && seen.length > 0 && this.codec.resumed) {
      const { text, frames } = this.codec.resumed();
      this.opening = text;
      this.openingFrames = frames;
    }
    if (plan.skip !== undefined && seen.length > 0) {
      const entry = seen[seen.length - 1]!;
      this.lastSeq = Math.max(this.lastSeq, entry.event.seq);
      try {
        const { text, frames, faults } = this.codec.write(entry, plan.skip);
        this.opening = text;
        this.openingFrames = frames;
        for (const fault of faults ?? []) this.hooks.hookFailed(this, entry, fault);
      } catch (error) {
        if (isInstance(error, HistoryGapError)) throw error; // a position inside the entry that it does not have
        this.hooks.poisoned(this, entry, error);
      }
      this.openingTerminal = entry.event.type === 'agent_completed';
      const pause = this.pausesAt(entry);
      if (pause) {
        this.opening += pause.text;
        this.openingFrames += pause.frames;
        this.openingTerminal = true;
      }
      this.noteEntry();
    }
    if (plan.continuation && this.codec.continuation) {
      const { text, frames } = this.codec.continuation(plan.runId, this.threadId);
      this.opening = text + this.opening;
      this.openingFrames += frames;
    }
    this.pending = plan.rest.filter((entry) => entry.event.runId === plan.runId);
    if (this.pending.length > 0) this.noteEntry();
    // Early live entries of the run, already queued in the follower, count too.
    if (this.follower.queued > 0) this.noteEntry();
  }

  /**
   * Calls `open` once, synchronously, when the first entry of the run is waiting (or at once when
   * one is): the response opens with the run's first event, before more can pile up unread.
   * Resolves once it was called or the stream ended.
   */
  openOnFirstEntry(open: () => void): Promise<void> {
    if (!this.isOpen) return Promise.resolve();
    if (this.hasEntry) {
      open();
      return Promise.resolve();
    }
    return new Promise((resolve) =>
      this.firstWaiters.push(() => {
        if (this.state === 'ready') open();
        resolve();
      }),
    );
  }

  /** Starts writing to `sink`. */
  open(sink: SseSink): void {
    if (this.state !== 'ready') {
      // Ended while the response was being set up.
      sink.end();
      return;
    }
    this.sink = sink;
    this.state = 'open';
    if (this.opening.length > 0) {
      this.write(this.opening);
      this.hooks.framesSent(this.openingFrames);
      this.opening = '';
    }
    if (this.openingTerminal) return this.finish();
    this.pump();
  }

  /** The run settled: its terminal entry must reach the log within `timeoutMs`, or the stream ends with `UNDELIVERED`. */
  runSettled(timeoutMs: number, message: string): void {
    if (!this.isOpen || this.terminalTimer) return;
    this.terminalTimer = setTimeout(() => {
      this.terminalTimer = undefined;
      if (!this.isOpen) return;
      this.closeWith('error', ['UNDELIVERED', message]);
    }, timeoutMs);
    (this.terminalTimer as { unref?: () => void }).unref?.();
  }

  /** The sink can take more. */
  resume(): void {
    this.blocked = false;
    this.pump();
  }

  heartbeat(): void {
    if (this.state === 'open' && !this.blocked) this.write(this.codec.heartbeat);
  }

  /** Ends the stream for a server-side reason: the codec's closing message, the trailer, the end. A reader that does not read is cut. */
  close(reason: DisconnectReason): void {
    this.closeWith(reason, SERVER_ENDINGS[reason]);
  }

  /** Cuts the stream at once (slow consumer, shutdown grace passed). */
  cut(reason: DisconnectReason): void {
    if (this.state === 'closed') return;
    // Cancel now, not once the socket reports it closed: the run would go on meanwhile.
    if (reason === 'slow_consumer' && this.startedRun && this.reason === undefined) this.abortRun?.('slow_consumer');
    this.reason ??= reason;
    const wasOpen = this.state === 'open';
    this.state = 'ending';
    this.follower.close();
    this.wakeFirstWaiters();
    if (wasOpen) this.sink?.destroy();
  }

  /** The sink is gone (ended, cut, or the client left). Called by the sink; idempotent. */
  finished(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.reason ??= 'client';
    clearTimeout(this.terminalTimer);
    this.follower.close();
    this.wakeFirstWaiters();
    this.hooks.finished(this, this.reason);
    // Nothing of the request outlives the stream (a runtime may hold the sink a while longer).
    this.abortRun = undefined;
    this.pending = [];
    this.replay = [];
  }

  private closeWith(reason: RunStreamEnd, closing: readonly [ErrorCode, string] | undefined): void {
    if (!this.isOpen) return;
    const wasOpen = this.state === 'open';
    this.state = 'ending';
    this.reason ??= reason;
    this.follower.close();
    this.wakeFirstWaiters();
    if (!wasOpen || !this.sink) return;
    if (this.blocked) {
      this.sink.destroy();
      return;
    }
    if (closing) {
      const { text, frames } = this.codec.closing(closing[0], closing[1]);
      this.sink.write(text + this.codec.trailer);
      this.hooks.framesSent(frames);
    } else if (this.codec.trailer) this.sink.write(this.codec.trailer);
    this.sink.end();
  }

  private readable(): void {
    if (this.state === 'open') this.pump();
    else if (this.state === 'ready' || this.state === 'subscribing') this.noteEntry();
  }

  private noteEntry(): void {
    if (this.hasEntry) return;
    this.hasEntry = true;
    this.wakeFirstWaiters();
  }

  private wakeFirstWaiters(): void {
    for (const waiter of this.firstWaiters.splice(0)) waiter();
  }

  /** Advances the mapping over an entry the client has (an entry that cannot be written was skipped then too). */
  private advance(entry: LogEntry): void {
    if (entry.event.runId !== this.runId) return;
    this.lastSeq = Math.max(this.lastSeq, entry.event.seq);
    try {
      this.codec.write(entry);
    } catch {
      // Skipped (and reported) when it was streamed; skipped here too, so the mapping matches.
    }
  }

  private nextEntry(): LogEntry | undefined {
    if (this.pendingHead < this.pending.length) {
      const entry = this.pending[this.pendingHead]!;
      this.pending[this.pendingHead++] = undefined as unknown as LogEntry;
      if (this.pendingHead === this.pending.length) {
        this.pending = [];
        this.pendingHead = 0;
      }
      return entry;
    }
    return this.follower.next();
  }

  private write(text: string): void {
    if (!this.sink!.write(text)) this.blocked = true;
  }

  /** Writes waiting entries (the plan's, then the follower's) in chunks until the sink pushes back or the run's terminal entry is out. */
  private pump(): void {
    if (this.pumping || this.state !== 'open') return;
    this.pumping = true;
    try {
      while (this.state === 'open' && !this.blocked) {
        let chunk = '';
        let frames = 0;
        let terminal = false;
        let any = false;
        while (chunk.length < WRITE_CHUNK_CHARS) {
          const entry = this.nextEntry();
          if (!entry) break;
          const { event } = entry;
          if (event.runId !== this.runId) continue;
          if (event.seq <= this.lastSeq) continue; // at-least-once logs may repeat
          this.lastSeq = event.seq;
          any = true;
          try {
            const written = this.codec.write(entry);
            chunk += written.text;
            frames += written.frames;
            for (const fault of written.faults ?? []) this.hooks.hookFailed(this, entry, fault);
          } catch (error) {
            // One entry that cannot be written costs that entry only.
            this.hooks.poisoned(this, entry, error);
          }
          if (event.type === 'agent_completed') {
            terminal = true;
            break;
          }
          const pause = this.pausesAt(entry);
          if (pause) {
            // The run waits for its user: this stream ends here; the answer comes with the next request.
            chunk += pause.text;
            frames += pause.frames;
            terminal = true;
            break;
          }
        }
        if (!any) break;
        if (chunk.length > 0) this.write(chunk);
        this.hooks.framesSent(frames);
        if (terminal) {
          this.finish();
          break;
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  /** Notes a request answered (`user_answered`) or a call closed (`tool_completed`). */
  private noteSettled(entry: LogEntry): void {
    const settled = settledIdOf(entry.event);
    if (settled !== undefined) this.settledRequests.add(settled);
  }

  /** The frames that end this stream after `entry` when it is a request the run waits on, not known answered (pause mode only). */
  private pausesAt(entry: LogEntry): { text: string; frames: number } | undefined {
    if (!this.pauseOnRequest || !this.codec.pause) return undefined;
    const { event } = entry;
    if (event.type !== 'tool_executing') {
      this.noteSettled(entry);
      return undefined;
    }
    const pending = event.data.pending;
    if (!pending || this.settledRequests.has(pending.requestId) || this.settledRequests.has(event.data.toolCallId)) return undefined;
    return this.codec.pause(entry);
  }

  /** The run's terminal entry was written: the trailer, then the end. */
  private finish(): void {
    this.state = 'ending';
    this.reason ??= 'completed';
    this.follower.close();
    clearTimeout(this.terminalTimer);
    if (this.codec.trailer) this.sink!.write(this.codec.trailer);
    this.sink!.end();
  }
}
