import type { IncomingMessage } from 'node:http';
import { assertUnexpired, authenticateRequest, type Authenticate, type Principal } from './auth.js';
import { readNodeBody, readWebBody, type ReadBodyOptions } from './body.js';
import type { ResolvedBodyOptions, ResolvedRunLimitOptions } from './options.js';
import type { AuthRequest } from './request.js';
import type { RevocationWatch } from './revocations.js';
import { RunSlots } from './run-slots.js';

export interface RunAdmissionOptions {
  authenticate: Authenticate;
  authTimeoutMs: number;
  body: ResolvedBodyOptions & Pick<ReadBodyOptions, 'emptyBody'>;
  runs: ResolvedRunLimitOptions;
  /** Errors to report (the auth hook's); never shown to the client. */
  report(error: unknown, stage: 'authenticate'): void;
}

/** A request that may start its run: who, what (validated), and the slot to release when the run ends. */
export interface AdmittedRun<T> {
  principal: Principal;
  input: T;
  /** Gives the run slot back (idempotent): call it when the run ends, whatever happened. */
  release(): void;
}

/**
 * Admission of every surface that starts runs (AG-UI, useChat, run endpoints), in one order:
 * authenticate (with its timeout) → read the body (bytes, depth, timeout) → validate it
 * (`parse`, the surface's schema) → take a run slot (per user and in total). A slow, oversized
 * or invalid body never holds a slot, so it cannot lock its user out. A user revoked on the
 * surface since the request began (`watch`, from the surface's `Revocations`) is refused with
 * `REVOKED` after the hook and again after the body; credentials that expired while the body
 * arrived with `TOKEN_EXPIRED`. The caller admits (ends) the watch when its stream or run is
 * registered (a queued run: once the queue took it, `submitAdmitted`, which checks the expiry
 * again). Every refusal is an
 * `AgentwireError` to answer with `respondNode` / `respondWeb`.
 */
export class RunAdmission {
  readonly slots: RunSlots;
  private pending = 0;

  constructor(private readonly options: RunAdmissionOptions) {
    this.slots = new RunSlots(options.runs.maxRunsPerUser, options.runs.maxRuns);
  }

  /** Requests being authenticated right now. */
  get authenticating(): number {
    return this.pending;
  }

  /**
   * `takesSlot(input)` false: the request starts no run (e.g. it answers a waiting one) and holds
   * no slot. `watch`: the request's `RevocationWatch` (checked here, ended by the caller).
   */
  async admit<T>(
    request: AuthRequest,
    parse: (body: unknown, principal: Principal) => T | Promise<T>,
    takesSlot: (input: T) => boolean = () => true,
    watch?: RevocationWatch,
  ): Promise<AdmittedRun<T>> {
    this.pending++;
    let principal: Principal;
    try {
      principal = await authenticateRequest(this.options.authenticate, request, {
        timeoutMs: this.options.authTimeoutMs,
        report: (error) => this.options.report(error, 'authenticate'),
      });
    } finally {
      this.pending--;
    }
    watch?.check(principal.userId);
    const body = await readBody(request, this.options.body);
    // A body can take up to bodyTimeoutMs to arrive: no run starts for a user revoked or for
    // credentials that expired meanwhile.
    watch?.check(principal.userId);
    assertUnexpired(principal, Date.now());
    const input = await parse(body, principal);
    const release = takesSlot(input) ? this.slots.acquire(principal.userId) : () => undefined;
    return { principal, input, release };
  }
}

/** Reads the JSON body of a node or a web request with the limits. */
export function readBody(request: AuthRequest, options: ReadBodyOptions): Promise<unknown> {
  const raw = request.raw;
  if (typeof (raw as Request).headers?.get === 'function') return readWebBody(raw as Request, options);
  return readNodeBody(raw as IncomingMessage, options);
}

/** What `submitAdmitted` needs: the queue's submit and cancel, and where a failed cancel is reported. */
export interface QueuedSubmit {
  /** Submits the run (`queue.submit(…)`); resolves with its run id once the queue holds it. */
  submit(): Promise<string>;
  /** Cancels the just-submitted run as its user (`queue.cancel(runId, { userId })`). */
  cancel(runId: string): Promise<unknown>;
  /** A cancel that failed (the refusal stands; the run may then go on). */
  report(error: unknown): void;
}

/**
 * The last step of a request that queues a run (AG-UI and useChat with `queue`, `POST /runs`):
 * submits it, then admits the request's revocation watch and checks the principal's expiry. A
 * queue's submit is a round trip (a Redis one for BullMQ); a user `revoke()`d while it was in
 * flight, or credentials whose `expiresAt` passed meanwhile, get the run cancelled at once
 * (`cancel`, awaited, so it is requested before the client hears anything) and the request refused
 * with 401 `REVOKED` / `TOKEN_EXPIRED`: the run ends `cancelled` (its agent may have begun). Errors
 * of `submit` are thrown as they are; the watch stays the caller's to end on that path.
 */
export async function submitAdmitted(watch: RevocationWatch, principal: Principal, queued: QueuedSubmit, now: () => number = Date.now): Promise<string> {
  const runId = await queued.submit();
  try {
    watch.admit(principal.userId);
    assertUnexpired(principal, now());
  } catch (refusal) {
    try {
      await queued.cancel(runId);
    } catch (error) {
      queued.report(error);
    }
    throw refusal;
  }
  return runId;
}
