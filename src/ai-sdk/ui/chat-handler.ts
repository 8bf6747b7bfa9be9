import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BaseAgent } from '../../agent/base-agent.js';
import { GatewayError, ValidationError } from '../../errors/index.js';
import { generateRunId } from '../../ids/run-id.js';
import { isValidThreadId } from '../../ids/thread-id.js';
import type { Principal } from '../../gateway/auth.js';
import { checker, given, resolvePath, shown } from '../../gateway/options.js';
import type { AuthRequest } from '../../gateway/request.js';
import { RunSurface, type ContinueRequest, type MountedRunSurface, type RunResponder, type RunSurfaceOptions } from '../../gateway/run-stream/index.js';
import type { RunQueue } from '../../runs/types.js';
import type { GatewayStats } from '../../gateway/stats.js';
import { AGENTWIRE_CURSOR_HEADER, AGENTWIRE_RUN_ID_HEADER } from '../client.js';
import type { ModelAgentInput } from '../model/model-agent.js';
import type { UiMappingOptions } from './chunk-mapper.js';
import { DEFAULT_MAX_MESSAGE_PARTS, approvalResponsesOf, modelInputFromChat, parseChatRequest, type ChatRequest } from './chat-request.js';
import { UiCodec } from './codec.js';

/** Builds the agent's input from a chat request. Throw a `ValidationError` to answer 400. */
export type ChatInput<Input> = (request: ChatRequest, principal: Principal) => Input | Promise<Input>;

/**
 * Options of the useChat handler: the front-end contract's vocabulary (`authenticate`,
 * `authTimeoutMs`, `maxConnectionsPerUser`, `maxConnections`, `userLimitPolicy`,
 * `heartbeatIntervalMs` (default 15,000), `closeTimeoutMs` (default 5,000), `onError`, `log`,
 * `allowedOrigins`, `maxBodyBytes`, `maxBodyDepth`, `bodyTimeoutMs`, `maxRunsPerUser`, `maxRuns`,
 * `maxQueuedBytes`, `maxQueuedEvents`, `terminalTimeoutMs`) plus the UI mapping and `maxMessageParts`.
 */
export interface ChatHandlerBaseOptions<Input> extends UiMappingOptions, RunSurfaceOptions {
  /**
   * The agent that answers; its bridge's transport must write to `log`. With `queue`: the name the
   * queue's workers serve it by (a `BaseAgent` stands for its `name`).
   */
  agent: BaseAgent<Input, unknown> | string;
  /**
   * Run through a run queue (`MemoryRunQueue`, `BullMQRunQueue`) instead of in this process: a POST
   * submits the run (the queue's admission applies, cluster-wide) and streams it from `log` as a
   * worker runs it; with `abortOnDisconnect`, useChat's `stop()` cancels it through
   * `queue.cancel(runId, { userId })` wherever it runs.
   */
  queue?: RunQueue;
  /**
   * End the stream at a call waiting for approval (`tool-approval-request`, then `finish`) and take
   * the answer from the resend of `addToolApprovalResponse`, which then streams the rest of the same
   * run. Default `true`. `false`: the stream stays open while the run waits (answer over the
   * answer endpoint or WebSocket).
   */
  pauseOnRequest?: boolean;
  /** `useChat`'s `api`: `POST {path}` starts a run, `GET {path}/:id/stream` resumes one (node `handle()`; `fetch()` routes by method and the `/:id/stream` suffix). Default `'/api/chat'`. */
  path?: string;
  /** Cancel the run when the POST's client disconnects (or is cut for not reading). Default `false`: the run goes on and can be resumed. */
  abortOnDisconnect?: boolean;
  /**
   * Most messages and parts, counted together, in a POST (400 `INVALID_MESSAGES` past it, before
   * the AI SDK's validator runs: a tool part costs it ~0.1-0.3 ms of the event loop, an empty
   * message ~27 µs). Default 2,000.
   */
  maxMessageParts?: number;
}

/** `input` is optional when the agent takes `ModelAgentInput` (the default converts the messages), required otherwise. */
export type ChatHandlerOptions<Input = ModelAgentInput> = ChatHandlerBaseOptions<Input> &
  (ModelAgentInput extends Input ? { input?: ChatInput<Input> } : { input: ChatInput<Input> });

/**
 * The useChat handler: mounted like every surface of the contract. `handle()` serves `POST {path}`
 * (a run, `useChat`'s `api`) and `GET {path}/:id/stream` (a resume); `revoke()` ends a stream with
 * an `error` chunk `REVOKED`.
 */
export type ChatHandler = MountedRunSurface;

const CHAT_DEFAULTS = { name: 'ChatHandler', heartbeatIntervalMs: 15_000, closeTimeoutMs: 5_000 };
const CURSOR_PATTERN = /^[\x21-\x7e]{1,256}$/;

/**
 * Serves agent runs to AI SDK front ends (`useChat`, `DefaultChatTransport`, `readUIMessageStream`)
 * as the AI SDK UI message stream, built from the thread's event log (not from the model stream),
 * on the front-end contract:
 *
 * - `POST {path}` with `useChat`'s body `{ id, messages, ... }`: admission (auth → body → validation
 *   → run slot), then a run for the principal's user in thread `id`, streamed as UI chunks (SSE).
 * - `GET {path}/:id/stream`: resumes. Without a cursor it replays the chat's latest unfinished run
 *   from its start (`useChat` rebuilds the message from the `start` chunk); with a cursor
 *   (`x-agentwire-cursor` header or `?cursor=`) the log decides: exactly the chunks after that
 *   cursor's event, or 409 `HISTORY_GAP` (a cursor of another thread, forged or trimmed), never a
 *   partial replay. 204 when there is nothing to resume.
 *
 * Another user's chat id → 403; a stream only ever carries events of the authenticated user.
 */
export function createChatHandler<Input = ModelAgentInput>(options: ChatHandlerOptions<Input>): ChatHandler {
  return new AiSdkChatHandler(options as ChatHandlerBaseOptions<Input> & { input?: ChatInput<Input> });
}

interface ChatRun<Input> {
  threadId: string;
  runId: string;
  input: Input | undefined;
  /** A resend carrying approval responses: it continues a waiting run. */
  continuation?: ContinueRequest;
}

class AiSdkChatHandler<Input> implements ChatHandler {
  readonly path: string;
  private readonly surface: RunSurface;
  private readonly toInput: ChatInput<Input>;
  private readonly abortOnDisconnect: boolean;
  private readonly pauseOnRequest: boolean;
  private readonly maxMessageParts: number;

  constructor(private readonly options: ChatHandlerBaseOptions<Input> & { input?: ChatInput<Input> }) {
    // Bound, so that `export const GET = handler.fetch` (Next.js) and `app.use(handler.handle)` work.
    this.handle = this.handle.bind(this);
    this.fetch = this.fetch.bind(this);
    const check = checker(CHAT_DEFAULTS.name);
    const queue = options?.queue;
    if (queue !== undefined && (typeof queue?.submit !== 'function' || typeof queue.cancel !== 'function')) throw check.fail('queue', `must be a RunQueue (got ${shown(queue)})`);
    if (queue ? typeof options.agent !== 'string' && typeof options.agent?.name !== 'string' : typeof (options?.agent as Partial<BaseAgent<Input, unknown>> | undefined)?.run !== 'function') {
      throw check.fail('agent', queue ? "is required: the agent's name (or a BaseAgent)" : 'is required: a BaseAgent (or an agent name with queue)');
    }
    this.path = resolvePath(check, options.path, '/api/chat').replace(/\/+$/, '') || '/';
    this.toInput = options.input === undefined ? (request) => modelInputFromChat(request) as Input | Promise<Input> : check.fn('input', options.input);
    this.abortOnDisconnect = check.boolean('abortOnDisconnect', given(options.abortOnDisconnect, false));
    this.pauseOnRequest = check.boolean('pauseOnRequest', given(options.pauseOnRequest, true));
    this.maxMessageParts = check.integer('maxMessageParts', given(options.maxMessageParts, DEFAULT_MAX_MESSAGE_PARTS));
    const resultText = options.resultText === undefined ? undefined : check.fn('resultText', options.resultText);
    const errorText = options.errorText === undefined ? undefined : check.fn('errorText', options.errorText);
    const cursorMetadata = check.boolean('cursorMetadata', given(options.cursorMetadata, true));
    this.surface = new RunSurface(options, {
      ...CHAT_DEFAULTS,
      surface: 'ai-sdk',
      methods: ['GET', 'POST'],
      emptyBody: new GatewayError('INVALID_JSON', 'The request body is empty: expected { id, messages }', { field: 'body' }),
      codec: () => new UiCodec({ resultText, errorText, cursorMetadata }),
      pauseOnRequest: this.pauseOnRequest,
      ...(queue && { cancelRun: (runId: string, userId: string) => queue.cancel(runId, { userId }) }),
      streamHeaders: (runId) => ({
        'Content-Type': 'text/event-stream',
        'Cache-Control': 'no-cache',
        'x-vercel-ai-ui-message-stream': 'v1',
        [AGENTWIRE_RUN_ID_HEADER]: runId,
      }),
    });
  }

  handle(req: IncomingMessage, res: ServerResponse): boolean {
    let pathname: string;
    try {
      pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    } catch {
      return false;
    }
    if (pathname !== this.path && this.chatIdOf(pathname, true) === undefined) return false;
    this.surface.node(req, res, (request, responder, cors) => this.serve(request, responder, cors, true));
    return true;
  }

  fetch(request: Request): Promise<Response> {
    return this.surface.web(request, (view, responder, cors) => this.serve(view, responder, cors, false));
  }

  listen(port = 0, host = '127.0.0.1'): Promise<AddressInfo> {
    return this.surface.listen(port, host, (req, res) => this.handle(req, res));
  }

  stats(): GatewayStats {
    return this.surface.stats();
  }

  metrics(): GatewayStats {
    return this.surface.stats();
  }

  revoke(userId: string): number {
    return this.surface.revoke(userId);
  }

  close(): Promise<void> {
    return this.surface.close('The chat handler closed');
  }

  /**
   * The chat id of a resume path (`{path}/:id/stream`; without `exactPrefix`, `…/:id/stream` for
   * the web handler), undefined for any other path, null for a malformed id segment.
   */
  private chatIdOf(pathname: string, exactPrefix: boolean): string | null | undefined {
    if (!pathname.endsWith('/stream')) return undefined;
    const withoutStream = pathname.slice(0, -'/stream'.length);
    const slash = withoutStream.lastIndexOf('/');
    if (slash < 0) return undefined;
    const prefix = withoutStream.slice(0, slash) || '/';
    if (exactPrefix && prefix !== this.path) return undefined;
    const encoded = withoutStream.slice(slash + 1);
    if (encoded.length === 0) return undefined;
    try {
      return decodeURIComponent(encoded);
    } catch {
      return null;
    }
  }

  private async serve(request: AuthRequest, responder: RunResponder, cors: Record<string, string>, node: boolean): Promise<void> {
    // node: handle() only lets `path` and `{path}/:id/stream` through; web: the router chose.
    const chatId = this.chatIdOf(request.url.pathname, node);
    if (chatId === undefined) {
      if (request.method !== 'POST') throw new GatewayError('METHOD_NOT_ALLOWED', 'Use POST to send a message', { headers: { Allow: 'POST, OPTIONS' } });
      const { agent, queue } = this.options;
      return this.surface.start<ChatRun<Input>>(request, responder, cors, {
        parse: (body, principal) => this.parse(body, principal),
        execute: (run, principal, signal) => {
          const options = { userId: principal.userId, threadId: run.threadId, runId: run.runId };
          if (queue) return queue.submit(typeof agent === 'string' ? agent : agent.name, run.input, options);
          return (agent as BaseAgent<Input, unknown>).run(run.input as Input, { ...options, signal });
        },
        queued: queue !== undefined,
        continuation: (run) => run.continuation,
        clientRunId: false,
        abortOnDisconnect: this.abortOnDisconnect,
        abortMessage: (reason) => (reason === 'client' ? 'The chat client disconnected' : 'The chat client does not read its stream'),
      });
    }
    if (request.method !== 'GET') throw new GatewayError('METHOD_NOT_ALLOWED', 'Use GET to resume a stream', { headers: { Allow: 'GET, OPTIONS' } });
    if (chatId === null || !isValidThreadId(chatId)) {
      throw new ValidationError('Invalid chat id: expected 1-128 letters, digits and _ - . :', { code: 'INVALID_THREAD_ID', field: 'id' });
    }
    const cursor = this.cursorOf(request);
    return this.surface.resume(request, responder, cors, {
      threadId: chatId,
      position: cursor === undefined ? undefined : { cursor },
      notFound: 'no_content',
    });
  }

  private async parse(body: unknown, principal: Principal): Promise<ChatRun<Input>> {
    const request = await parseChatRequest(body, { maxMessageParts: this.maxMessageParts });
    const approvals = !this.pauseOnRequest ? [] : approvalResponsesOf(request);
    if (approvals.length > 0) {
      // The resend after addToolApprovalResponse: the answers to the run that waits, not a new run.
      const responses = approvals.map((approval) => ({ requestId: approval.requestId, answer: () => ({ approved: approval.approved, reason: approval.reason }) }));
      return { threadId: request.id, runId: request.messages.at(-1)!.id, input: undefined, continuation: { threadId: request.id, responses } };
    }
    const input = await this.toInput(request, principal);
    return { threadId: request.id, runId: generateRunId(request.id), input };
  }

  /** The resume cursor: the `x-agentwire-cursor` header, else `?cursor=`. Throws `ValidationError` `INVALID_CURSOR` if malformed. */
  private cursorOf(request: AuthRequest): string | undefined {
    const header = request.headers.get(AGENTWIRE_CURSOR_HEADER);
    const cursor = header !== null && header !== '' ? header : request.url.searchParams.get('cursor') || undefined;
    if (cursor === undefined) return undefined;
    if (!CURSOR_PATTERN.test(cursor)) {
      throw new ValidationError('Invalid cursor: expected 1-256 printable ASCII characters', { code: 'INVALID_CURSOR', field: AGENTWIRE_CURSOR_HEADER });
    }
    return cursor;
  }
}
