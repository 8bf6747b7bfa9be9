import type { IncomingMessage, ServerResponse } from 'node:http';
import { answerFrameSchema } from '../../protocol/frames.js';
import { GatewayError, StateError, ValidationError } from '../../errors/index.js';
import { describeIssue } from '../../events/parse.js';
import { isInteractionLog, type AnswerLog, type AnswerReceipt } from '../../transport/interaction.js';
import { authenticateRequest, type Authenticate } from '../auth.js';
import { parseJsonBody, readNodeText, readWebText } from '../body.js';
import { OriginPolicy, type AllowedOrigins } from '../origin.js';
import { MAX_TIMER_MS, checker, type OnError } from '../options.js';
import { fromNodeRequest, fromWebRequest, type AuthRequest } from '../request.js';
import { problemOf, respondNode, respondWeb } from '../respond.js';

/** Options of the answer endpoint: the front-end contract's names and meanings. */
export interface AnswerEndpointOptions {
  authenticate: Authenticate;
  /** Where answers go: the log the runs wait on (a `MemoryTransport`, a `RedisEventLog`, …). */
  log: AnswerLog;
  /** Default 10,000 ms. */
  authTimeoutMs?: number;
  /** An answer is small: default 64 KiB. */
  maxBodyBytes?: number;
  /** Default 64. */
  maxBodyDepth?: number;
  /** Default 10,000 ms. */
  bodyTimeoutMs?: number;
  allowedOrigins?: AllowedOrigins;
  onError?: OnError;
}

/** `POST` body of the answer endpoint: the WebSocket `answer` frame without its type. The user is the authenticated one, never a field. */
export const answerBodySchema = answerFrameSchema.omit({ type: true });

/** What a `200` answer of the endpoint carries. */
export interface AnswerResponseBody {
  requestId: string;
  /** Cursor of the `user_answered` event in the thread's log. */
  cursor: string;
  eventId: string;
}

const NAME = 'AnswerEndpoint';
/** Body fields that are the answer (refused `ANSWER_INVALID`, as by the log); the others address the request. */
const ANSWER_FIELDS: ReadonlySet<string> = new Set(['approved', 'value', 'reason']);
const JSON_HEADERS = { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' } as const;

/**
 * The HTTP way to answer a pending request (for SSE and other read-only front ends): `POST` a JSON
 * body `{ threadId, runId, requestId, approved | value, reason? }` as the authenticated user. The
 * log decides (only the run's user, once); refusals are the contract's error bodies with their
 * catalog status: 403 `ANSWER_FORBIDDEN`, 409 `ANSWER_ALREADY_GIVEN` / `REQUEST_CLOSED` / `RUN_CLOSED`,
 * 404 `ANSWER_UNKNOWN_REQUEST`, 400 `ANSWER_INVALID` (the answer: `approved` not a boolean, a `reason`
 * over 1,024 characters, as the log refuses it) / `INVALID_REQUEST` (a body that addresses no request),
 * 413 `BODY_TOO_LARGE`, 401.
 * Node: `endpoint.node(req, res)`; web-standard: `endpoint.web(request)`.
 */
export class AnswerEndpoint {
  private readonly log: AnswerLog;
  private readonly authTimeoutMs: number;
  private readonly maxBodyBytes: number;
  private readonly maxBodyDepth: number;
  private readonly bodyTimeoutMs: number;
  private readonly origins: OriginPolicy;

  constructor(private readonly options: AnswerEndpointOptions) {
    const check = checker(NAME);
    if (typeof options?.authenticate !== 'function') throw check.fail('authenticate', 'is required: a function (request: AuthRequest) => { userId } | null');
    if (typeof (options.log as Partial<AnswerLog> | undefined)?.answerRequest !== 'function') {
      throw check.fail('log', 'is required: a log that takes answers (answerRequest), e.g. a MemoryTransport or a RedisEventLog');
    }
    this.log = options.log;
    this.authTimeoutMs = check.integer('authTimeoutMs', options.authTimeoutMs ?? 10_000, 1, MAX_TIMER_MS);
    this.maxBodyBytes = check.integer('maxBodyBytes', options.maxBodyBytes ?? 64 * 1024, 1);
    this.maxBodyDepth = check.integer('maxBodyDepth', options.maxBodyDepth ?? 64, 1);
    this.bodyTimeoutMs = check.integer('bodyTimeoutMs', options.bodyTimeoutMs ?? 10_000, 1, MAX_TIMER_MS);
    this.origins = new OriginPolicy(options.allowedOrigins, ['POST']);
  }

  /** Whether `log` can take answers (what the endpoint needs). */
  static accepts(log: unknown): boolean {
    return isInteractionLog(log) || typeof (log as Partial<AnswerLog> | undefined)?.answerRequest === 'function';
  }

  readonly node = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let headers: Record<string, string> = {};
    try {
      const request = fromNodeRequest(req);
      if (!request) throw new ValidationError('Malformed request', { code: 'INVALID_REQUEST' });
      if (request.method === 'OPTIONS') {
        const preflight = this.origins.preflight(request);
        if (preflight.status === 403) throw preflight.error;
        res.writeHead(204, preflight.headers).end();
        return;
      }
      headers = this.admit(request);
      const principal = await this.authenticate(request);
      const text = await readNodeText(req, this.maxBodyBytes, this.bodyTimeoutMs);
      const body = JSON.stringify(await this.answer(principal.userId, text));
      res.writeHead(200, { ...JSON_HEADERS, ...headers, 'Content-Length': Buffer.byteLength(body) }).end(body);
    } catch (error) {
      this.report(error);
      respondNode(res, error, headers);
    }
  };

  readonly web = async (request: Request): Promise<Response> => {
    let headers: Record<string, string> = {};
    try {
      const info = fromWebRequest(request);
      if (!info) throw new ValidationError('Malformed request', { code: 'INVALID_REQUEST' });
      if (info.method === 'OPTIONS') {
        const preflight = this.origins.preflight(info);
        if (preflight.status === 403) throw preflight.error;
        return new Response(null, { status: 204, headers: preflight.headers });
      }
      headers = this.admit(info);
      const principal = await this.authenticate(info);
      const text = await readWebText(request, this.maxBodyBytes, this.bodyTimeoutMs);
      return new Response(JSON.stringify(await this.answer(principal.userId, text)), { status: 200, headers: { ...JSON_HEADERS, ...headers } });
    } catch (error) {
      this.report(error);
      return respondWeb(error, headers);
    }
  };

  /** Method and origin; returns the CORS headers to send. */
  private admit(request: AuthRequest): Record<string, string> {
    if (request.method !== 'POST') throw new GatewayError('METHOD_NOT_ALLOWED', 'Answers are POSTed', { headers: { Allow: 'POST, OPTIONS' } });
    const origin = this.origins.check(request);
    if (!origin.ok) throw origin.error;
    return origin.headers;
  }

  private authenticate(request: AuthRequest) {
    return authenticateRequest(this.options.authenticate, request, {
      timeoutMs: this.authTimeoutMs,
      report: (error) => this.options.onError?.(error, { surface: 'answers', stage: 'authenticate' }),
    });
  }

  private async answer(userId: string, text: string): Promise<AnswerResponseBody> {
    const parsed = answerBodySchema.safeParse(parseJsonBody(text, this.maxBodyDepth));
    if (!parsed.success) {
      const issue = describeIssue(parsed.error);
      // The answer itself (`approved` not a boolean, a `reason` over 1,024 characters) is refused as
      // the log refuses it; a body that does not address a request is a malformed request.
      const code = ANSWER_FIELDS.has(issue.field) ? 'ANSWER_INVALID' : 'INVALID_REQUEST';
      throw new ValidationError(`Invalid answer: ${issue.field}: ${issue.message}`, { code, field: issue.field });
    }
    const { threadId, runId, requestId, approved, value, reason } = parsed.data;
    const receipt: AnswerReceipt = await this.log.answerRequest({ threadId, runId, requestId, userId, approved, value, reason });
    return { requestId, cursor: receipt.cursor, eventId: receipt.event.id };
  }

  /** Failures that are not refusals (the log failed) go to `onError`. */
  private report(error: unknown): void {
    if (problemOf(error).status >= 500 && !(error instanceof StateError)) this.options.onError?.(error, { surface: 'answers', stage: 'request' });
  }
}
