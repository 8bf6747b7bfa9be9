import type { IncomingMessage, ServerResponse } from 'node:http';
import { answerFrameSchema } from '../../protocol/frames.js';
import { GatewayError, StateError, ValidationError } from '../../errors/index.js';
import { describeIssue } from '../../events/parse.js';
import { isInteractionLog, type AnswerLog, type AnswerReceipt } from '../../transport/interaction.js';
import { assertUnexpired, authenticateRequest, type Principal } from '../auth.js';
import { parseJsonBody, readNodeText, readWebText } from '../body.js';
import { OriginPolicy } from '../origin.js';
import {
  callOnError,
  checker,
  resolveBodyOptions,
  resolveFrontEndOptions,
  type BodyOptions,
  type ErrorContext,
  type FrontEndOptions,
  type ResolvedBodyOptions,
  type ResolvedFrontEndOptions,
} from '../options.js';
import { fromNodeRequest, fromWebRequest, type AuthRequest } from '../request.js';
import { jsonReply, problemOf, respondNode, respondWeb, webReply, writeNodeReply } from '../respond.js';
import { Revocations, type RevocationWatch } from '../revocations.js';
import { isInstance } from '../../errors/guards.js';

/**
 * Options of the answer endpoint: the front-end contract's names and meanings, resolved and
 * validated as on every surface (`INVALID_OPTION`; only `undefined` means the default):
 * `authenticate` (required), `authTimeoutMs` (10,000 ms), `allowedOrigins`, `onError`, and the
 * body limits `maxBodyBytes` (an answer is small: 64 KiB), `maxBodyDepth` (64), `bodyTimeoutMs` (10,000 ms).
 */
export interface AnswerEndpointOptions extends Pick<FrontEndOptions, 'authenticate' | 'authTimeoutMs' | 'allowedOrigins' | 'onError'>, BodyOptions {
  /** Where answers go: the log the runs wait on (a `MemoryTransport`, a `RedisEventLog`, …). */
  log: AnswerLog;
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
/** An answer is small: the endpoint's own default body bound. */
const ANSWER_BODY_DEFAULTS = { maxBodyBytes: 64 * 1024 } as const;
/** Body fields that are the answer (refused `ANSWER_INVALID`, as by the log); the others address the request. */
const ANSWER_FIELDS: ReadonlySet<string> = new Set(['approved', 'value', 'reason']);

/**
 * The HTTP way to answer a pending request (for SSE and other read-only front ends): `POST` a JSON
 * body `{ threadId, runId, requestId, approved | value, reason? }` as the authenticated user. The
 * log decides (only the run's user, once); refusals are the contract's error bodies with their
 * catalog status: 403 `ANSWER_FORBIDDEN`, 409 `ANSWER_ALREADY_GIVEN` / `REQUEST_CLOSED` / `RUN_CLOSED`,
 * 404 `ANSWER_UNKNOWN_REQUEST`, 400 `ANSWER_INVALID` (the answer: `approved` not a boolean, a `reason`
 * over 1,024 characters, as the log refuses it) / `INVALID_REQUEST` (a body that addresses no request),
 * 413 `BODY_TOO_LARGE`, 401 (`AUTH_FAILED`; `TOKEN_EXPIRED` also for credentials that expired while
 * the body arrived; `REVOKED` for a user `revoke()`d while the request was being admitted).
 * Node: `endpoint.node(req, res)`; web-standard: `endpoint.web(request)`.
 */
export class AnswerEndpoint {
  private readonly log: AnswerLog;
  private readonly options: ResolvedFrontEndOptions;
  private readonly body: ResolvedBodyOptions;
  private readonly origins: OriginPolicy;
  /** Revocations that requests still being admitted (auth hook, body) must see. */
  private readonly revocations = new Revocations();

  constructor(options: AnswerEndpointOptions) {
    // The shared resolution: the same values are refused with the same messages as on every surface.
    this.options = resolveFrontEndOptions(options, { name: NAME, heartbeatIntervalMs: 0, closeTimeoutMs: 0 });
    if (typeof (options.log as Partial<AnswerLog> | undefined)?.answerRequest !== 'function') {
      throw checker(NAME).fail('log', 'is required: a log that takes answers (answerRequest), e.g. a MemoryTransport or a RedisEventLog');
    }
    this.log = options.log;
    this.body = resolveBodyOptions(options, NAME, ANSWER_BODY_DEFAULTS);
    this.origins = new OriginPolicy(this.options.allowedOrigins, ['POST']);
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
      const answered = await this.watched(request, () => readNodeText(req, this.body.maxBodyBytes, this.body.bodyTimeoutMs));
      writeNodeReply(res, jsonReply(200, answered, headers, this.unwritable, headers), this.unwritable);
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
      const answered = await this.watched(info, () => readWebText(request, this.body.maxBodyBytes, this.body.bodyTimeoutMs));
      return webReply(jsonReply(200, answered, headers, this.unwritable, headers), this.unwritable);
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

  /**
   * Refuses the answers of `userId` still being admitted (the auth hook answering, the body
   * arriving) with 401 `REVOKED`: nothing is appended for them. Returns how many streams were
   * closed: always 0, the endpoint holds none. Make `authenticate` refuse the user's credentials too.
   */
  revoke(userId: string): number {
    this.revocations.revoke(userId);
    return 0;
  }

  /**
   * Authenticates, reads the body (`read`) and answers, in the order of every surface: a user
   * revoked since the request began is refused (`REVOKED`) after the hook and again after the body,
   * credentials that expired while the body arrived with `TOKEN_EXPIRED`; nothing is appended then.
   */
  private watched(request: AuthRequest, read: () => Promise<string>): Promise<AnswerResponseBody> {
    return this.revocations.watching(async (watch) => {
      const principal = await this.authenticate(request);
      watch.check(principal.userId);
      const text = await read();
      return this.answer(principal, text, watch);
    });
  }

  private authenticate(request: AuthRequest): Promise<Principal> {
    return authenticateRequest(this.options.authenticate, request, {
      timeoutMs: this.options.authTimeoutMs,
      report: (error) => this.notify(error, { surface: 'answers', stage: 'authenticate' }),
    });
  }

  private async answer(principal: Principal, text: string, watch: RevocationWatch): Promise<AnswerResponseBody> {
    const { userId } = principal;
    // The body may take up to bodyTimeoutMs: no answer is given for a user revoked or for
    // credentials that expired meanwhile.
    watch.admit(userId);
    assertUnexpired(principal, Date.now());
    const parsed = answerBodySchema.safeParse(parseJsonBody(text, this.body.maxBodyDepth));
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

  /** An answer that could not be written (a receipt of a log of your own that is not JSON): `onError`, stage `respond`. */
  private readonly unwritable = (error: unknown): void => this.notify(error, { surface: 'answers', stage: 'respond' });

  /** Failures that are not refusals (the log failed) go to `onError`. */
  private report(error: unknown): void {
    if (problemOf(error).status >= 500 && !isInstance(error, StateError)) this.notify(error, { surface: 'answers', stage: 'request' });
  }

  /** Calls `onError`; a throwing error hook changes nothing (the client still gets its answer). */
  private notify(error: unknown, context: ErrorContext): void {
    callOnError(this.options.onError, error, context);
  }
}
