import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeUIMessageStreamToResponse } from 'ai';
import type { BaseAgent } from '../../agent/base-agent.js';
import { AbortError } from '../../errors/index.js';
import { generateRunId } from '../../ids/run-id.js';
import { isValidThreadId } from '../../ids/thread-id.js';
import type { Authenticate, Principal } from '../../gateway/auth.js';
import { fromNodeRequest } from '../../gateway/request.js';
import type { EventLog, Subscription } from '../../transport/types.js';
import { AGENTWIRE_RUN_ID_HEADER } from '../client.js';
import type { ModelAgentInput } from '../model/model-agent.js';
import { UiChunkMapper, type UiMappingOptions } from './chunk-mapper.js';
import { modelInputFromChat, parseChatRequest, type ChatRequest } from './chat-request.js';
import { EntryRelay } from './entry-relay.js';
import { HttpProblem, readJsonBody, requestUrl, respondError } from '../../protocol/http.js';
import { cursorFrom, respondNoContent, toProblem } from './http.js';
import { planResume } from './resume.js';
import { RunChunkStream } from './run-chunk-stream.js';

/** Builds the agent's input from a chat request. */
export type ChatInput<Input> = (request: ChatRequest, principal: Principal) => Input | Promise<Input>;

export interface ChatHandlerBaseOptions<Input> extends UiMappingOptions {
  /** The agent that answers; its bridge's transport must write to `log`. */
  agent: BaseAgent<Input, unknown>;
  /** The thread logs the UI streams are built from (e.g. the `MemoryTransport` of the agent's bridge). */
  log: EventLog;
  /** Called for every request first; `null` or a throw → 401. The same hook the gateways use. */
  authenticate: Authenticate;
  /** `useChat`'s `api`: `POST {path}` starts a run, `GET {path}/:id/stream` resumes one. Default `'/api/chat'`. */
  path?: string;
  /** Largest accepted request body. Default 1 MiB. */
  maxBodyBytes?: number;
  /** SSE keep-alive comment after this much idle time (ms); `0` disables. Default 15,000. */
  keepAliveMs?: number;
  /** Abort the run when the POST's client disconnects. Default `false`: the run goes on and can be resumed. */
  abortOnDisconnect?: boolean;
  /** Chunks queued for a client that does not read before its stream is ended (it can resume). Default 10,000. */
  maxQueuedChunks?: number;
  /** After `run()` settled, how long to wait for its `agent_completed` to reach `log` before ending the stream with an error (ms). Default 10,000. */
  terminalTimeoutMs?: number;
}

/** `input` is optional when the agent takes `ModelAgentInput` (the default converts the messages), required otherwise. */
export type ChatHandlerOptions<Input = ModelAgentInput> = ChatHandlerBaseOptions<Input> &
  (ModelAgentInput extends Input ? { input?: ChatInput<Input> } : { input: ChatInput<Input> });

export interface ChatHandler {
  /** Handles `POST {path}` and `GET {path}/:id/stream`; resolves `false` for any other path (left to the caller). */
  handle(req: IncomingMessage, res: ServerResponse): Promise<boolean>;
  /** Ends open streams and aborts the runs this handler started; resolves once those runs settled. */
  close(): Promise<void>;
}

interface ActiveStream {
  session: RunChunkStream;
  subscription: Subscription | undefined;
  /** Aborts the run (POST streams only). */
  controller?: AbortController;
}

/**
 * Serves agent runs to AI SDK front ends (`useChat`, `DefaultChatTransport`, `readUIMessageStream`)
 * as the AI SDK UI message stream, built from the thread's event log (not from the model stream):
 *
 * - `POST {path}` with `useChat`'s body `{ id, messages, ... }`: authenticates, starts a run for the
 *   principal's user in thread `id`, and streams its events as UI chunks (SSE).
 * - `GET {path}/:id/stream`: resumes. Without a cursor it replays the chat's active run from its
 *   start (`useChat` rebuilds the message from the `start` chunk); with a cursor (`x-agentwire-cursor`
 *   header or `?cursor=`) it sends exactly the chunks after that cursor. 204 when there is nothing to
 *   resume, 409 when the cursor's history is gone.
 *
 * Another user's chat id → 403; a stream only ever carries events of the authenticated user.
 */
export function createChatHandler<Input = ModelAgentInput>(options: ChatHandlerOptions<Input>): ChatHandler {
  return new AiSdkChatHandler(options as ChatHandlerBaseOptions<Input> & { input?: ChatInput<Input> });
}

class AiSdkChatHandler<Input> implements ChatHandler {
  private readonly path: string;
  private readonly toInput: ChatInput<Input>;
  private readonly active = new Set<ActiveStream>();
  /** Runs started here that have not settled (their client may be gone). */
  private readonly runs = new Map<Promise<unknown>, AbortController>();
  private closed = false;

  constructor(private readonly options: ChatHandlerBaseOptions<Input> & { input?: ChatInput<Input> }) {
    this.path = (options.path ?? '/api/chat').replace(/\/+$/, '') || '/';
    this.toInput = options.input ?? ((request) => modelInputFromChat(request) as Input | Promise<Input>);
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const route = this.route(req);
    if (!route) return false;
    try {
      if (this.closed) throw new HttpProblem(503, 'CLOSED', 'The chat handler is closed');
      if (route.kind === 'wrong-method') throw new HttpProblem(405, 'METHOD_NOT_ALLOWED', `Use ${route.allow}`);
      const principal = await this.authenticate(req);
      if (route.kind === 'post') await this.startRun(req, res, principal);
      else await this.resume(req, res, principal, route.chatId);
    } catch (error) {
      const problem = toProblem(error);
      respondError(res, problem.status, problem.code, problem.message);
    }
    return true;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const stream of [...this.active]) this.release(stream);
    const runs = [...this.runs];
    for (const [, controller] of runs) controller.abort(new AbortError('The chat handler closed'));
    await Promise.all(runs.map(([run]) => run.catch(() => undefined)));
  }

  private route(req: IncomingMessage): { kind: 'post' } | { kind: 'resume'; chatId: string } | { kind: 'wrong-method'; allow: string } | undefined {
    const url = requestUrl(req);
    if (!url) return undefined;
    if (url.pathname === this.path) return req.method === 'POST' ? { kind: 'post' } : { kind: 'wrong-method', allow: 'POST' };
    const prefix = this.path === '/' ? '/' : `${this.path}/`;
    if (!url.pathname.startsWith(prefix) || !url.pathname.endsWith('/stream')) return undefined;
    const encoded = url.pathname.slice(prefix.length, -'/stream'.length);
    if (encoded.length === 0 || encoded.includes('/')) return undefined;
    if (req.method !== 'GET') return { kind: 'wrong-method', allow: 'GET' };
    let chatId: string;
    try {
      chatId = decodeURIComponent(encoded);
    } catch {
      return undefined;
    }
    return { kind: 'resume', chatId };
  }

  private async authenticate(req: IncomingMessage): Promise<Principal> {
    let principal: Principal | null;
    try {
      const view = fromNodeRequest(req);
      if (!view) throw new Error('malformed request URL');
      principal = await this.options.authenticate(view);
    } catch (error) {
      throw new HttpProblem(401, 'AUTH_FAILED', error instanceof Error && error.message ? error.message : 'Authentication failed');
    }
    if (!principal || typeof principal.userId !== 'string' || principal.userId.length === 0) {
      throw new HttpProblem(401, 'AUTH_FAILED', 'Authentication failed');
    }
    return principal;
  }

  private async assertOwner(principal: Principal, chatId: string): Promise<string | undefined> {
    const owner = await this.options.log.ownerOf(chatId);
    if (owner !== undefined && owner !== principal.userId) throw new HttpProblem(403, 'THREAD_FORBIDDEN', 'This chat belongs to another user');
    return owner;
  }

  /** POST: a new run of the agent, streamed from the log. */
  private async startRun(req: IncomingMessage, res: ServerResponse, principal: Principal): Promise<void> {
    const request = await parseChatRequest(await readJsonBody(req, this.options.maxBodyBytes ?? 1024 * 1024));
    const threadId = request.id;
    await this.assertOwner(principal, threadId);
    let input: Input;
    try {
      input = await this.toInput(request, principal);
    } catch (error) {
      throw new HttpProblem(400, 'INVALID_INPUT', error instanceof Error ? error.message : 'The request cannot be turned into the agent input');
    }
    const runId = generateRunId(threadId);
    const controller = new AbortController();
    const stream: ActiveStream = { session: this.session(runId, principal, () => this.onCancel(stream)), subscription: undefined, controller };
    const relay = new EntryRelay();
    stream.subscription = await this.subscribe(principal, threadId, relay);
    relay.attach(stream.session);
    this.active.add(stream);
    const run = this.options.agent.run(input, { userId: principal.userId, threadId, runId, signal: controller.signal });
    this.runs.set(run, controller);
    void run.finally(() => this.runs.delete(run)).catch(() => undefined);
    const outcome = await Promise.race([stream.session.firstEvent().then(() => undefined), run.then(() => undefined, (error: unknown) => ({ error }))]);
    if (outcome && !stream.session.started) {
      // run() refused before emitting anything (invalid options, thread of another user).
      this.release(stream);
      throw outcome.error;
    }
    void run
      .catch(() => undefined)
      .then(() => this.watchTerminal(stream));
    await this.pipe(res, stream, runId);
  }

  /** GET .../:id/stream: continue a run from the log. */
  private async resume(req: IncomingMessage, res: ServerResponse, principal: Principal, chatId: string): Promise<void> {
    if (!isValidThreadId(chatId)) throw new HttpProblem(400, 'INVALID_THREAD_ID', 'Invalid chat id');
    const cursor = cursorFrom(req);
    const owner = await this.assertOwner(principal, chatId);
    if (owner === undefined) {
      respondNoContent(res);
      return;
    }
    const relay = new EntryRelay();
    let subscription: Subscription | undefined;
    let plan: ReturnType<typeof planResume>;
    try {
      const result = await this.options.log.subscribe({ userId: principal.userId, threadId: chatId }, relay);
      if (result.status !== 'subscribed') throw new HttpProblem(409, 'HISTORY_GAP', result.gap.message);
      subscription = result.subscription;
      plan = planResume(result.replay, cursor);
    } catch (error) {
      subscription?.close();
      throw error;
    }
    if (plan.kind !== 'stream') {
      subscription.close();
      if (plan.kind === 'none') respondNoContent(res);
      else respondError(res, 409, 'HISTORY_GAP', plan.message);
      return;
    }
    const stream: ActiveStream = { session: this.session(plan.runId, principal, () => this.onCancel(stream)), subscription };
    stream.session.push(plan.seen, false);
    stream.session.push(plan.rest, true);
    relay.attach(stream.session);
    if (!stream.session.done) this.active.add(stream);
    else subscription.close();
    await this.pipe(res, stream, plan.runId);
  }

  private session(runId: string, principal: Principal, onCancel: () => void): RunChunkStream {
    const { resultText, errorText, cursorMetadata } = this.options;
    return new RunChunkStream({
      runId,
      userId: principal.userId,
      mapper: new UiChunkMapper({ resultText, errorText, cursorMetadata }),
      maxQueuedChunks: this.options.maxQueuedChunks ?? 10_000,
      onCancel,
    });
  }

  private async subscribe(principal: Principal, threadId: string, relay: EntryRelay): Promise<Subscription> {
    const result = await this.options.log.subscribe({ userId: principal.userId, threadId }, relay);
    if (result.status !== 'subscribed') throw new HttpProblem(409, 'HISTORY_GAP', result.gap.message);
    return result.subscription;
  }

  private async pipe(res: ServerResponse, stream: ActiveStream, runId: string): Promise<void> {
    const keepAliveMs = this.options.keepAliveMs ?? 15_000;
    try {
      await pipeUIMessageStreamToResponse({
        response: res,
        stream: stream.session.stream,
        headers: { [AGENTWIRE_RUN_ID_HEADER]: runId },
        ...(keepAliveMs > 0 && { keepAliveMs }),
      });
    } finally {
      // Piping ends early only when the client went away (the AI SDK then cancels the stream; this
      // may run before that cancellation reaches the session, so treat it as the disconnect itself).
      if (stream.session.done) this.release(stream);
      else this.onCancel(stream);
    }
  }

  /** The client went away: stop reading the log; abort the run only if configured to. */
  private onCancel(stream: ActiveStream): void {
    if (this.options.abortOnDisconnect) stream.controller?.abort(new AbortError('The chat client disconnected'));
    this.release(stream);
  }

  private release(stream: ActiveStream): void {
    stream.subscription?.close();
    stream.session.end();
    this.active.delete(stream);
  }

  /** The run settled: its terminal event must reach the log soon, or the client would wait forever. */
  private watchTerminal(stream: ActiveStream): void {
    if (stream.session.done) return;
    const timer = setTimeout(() => {
      stream.session.fail("The run's events did not reach the chat handler's event log (is `log` the transport of the agent's bridge?)");
      this.release(stream);
    }, this.options.terminalTimeoutMs ?? 10_000);
    timer.unref();
    void stream.session.whenDone().then(() => clearTimeout(timer));
  }
}
