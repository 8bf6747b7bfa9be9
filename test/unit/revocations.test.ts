/**
 * The revocations every surface's pending requests see (src/gateway/revocations.ts): a request
 * watching since before `revoke(userId)` is refused with `REVOKED`; one that began after, or of
 * another user, is not; what is kept is bounded by the pending requests.
 */
import { describe, expect, it } from 'vitest';
import { AuthError } from '../../src/errors/index.js';
import { submitAdmitted } from '../../src/gateway/admission.js';
import { Revocations } from '../../src/gateway/revocations.js';

const thrown = (act: () => void): unknown => {
  try {
    act();
    return undefined;
  } catch (error) {
    return error;
  }
};
const kept = (revocations: Revocations): number => (revocations as unknown as { revoked: Map<string, number> }).revoked.size;

describe('Revocations', () => {
  it('refuses a watch of the revoked user begun before the revocation, with AuthError REVOKED (401), at every check', () => {
    const revocations = new Revocations();
    const watch = revocations.watch();
    revocations.revoke('mallory');
    const error = thrown(() => watch.check('mallory'));
    expect(error).toBeInstanceOf(AuthError);
    expect(error).toMatchObject({ code: 'REVOKED' });
    expect(thrown(() => watch.check('mallory'))).toMatchObject({ code: 'REVOKED' });
    expect(thrown(() => watch.admit('mallory'))).toMatchObject({ code: 'REVOKED' });
    expect(revocations.size).toBe(0);
  });

  it("another user's watch, and a watch begun after the revocation, pass", () => {
    const revocations = new Revocations();
    const before = revocations.watch();
    revocations.revoke('mallory');
    const after = revocations.watch();
    expect(thrown(() => before.check('alice'))).toBeUndefined();
    expect(thrown(() => after.check('mallory'))).toBeUndefined();
    revocations.revoke('mallory');
    expect(thrown(() => after.check('mallory'))).toMatchObject({ code: 'REVOKED' });
    before.end();
    after.end();
  });

  it('keeps nothing while no request is pending; prunes up to the oldest pending watch', () => {
    const revocations = new Revocations();
    revocations.revoke('nobody-pending');
    expect(kept(revocations)).toBe(0);
    const oldest = revocations.watch();
    for (let i = 0; i < 100; i++) revocations.revoke(`user-${i}`);
    const newer = revocations.watch();
    revocations.revoke('late');
    expect(kept(revocations)).toBe(101);
    oldest.end();
    // Only the revocation after the newer watch began can still refuse anyone.
    expect(kept(revocations)).toBe(1);
    expect(thrown(() => newer.check('user-5'))).toBeUndefined();
    expect(thrown(() => newer.check('late'))).toMatchObject({ code: 'REVOKED' });
    newer.end();
    newer.end();
    expect(kept(revocations)).toBe(0);
    expect(revocations.size).toBe(0);
  });

  it('a user revoked twice is kept once, at the later revocation', () => {
    const revocations = new Revocations();
    const first = revocations.watch();
    revocations.revoke('mallory');
    const second = revocations.watch();
    revocations.revoke('mallory');
    expect(kept(revocations)).toBe(1);
    first.end();
    expect(thrown(() => second.check('mallory'))).toMatchObject({ code: 'REVOKED' });
    second.end();
  });
});

describe('submitAdmitted: the watch covers a queue submit', () => {
  it('revoked while the submit is in flight: the submitted run is cancelled (awaited), then REVOKED; the watch is ended', async () => {
    const revocations = new Revocations();
    const steps: string[] = [];
    let answer!: (runId: string) => void;
    const result = revocations.watching((watch) =>
      submitAdmitted(watch, { userId: 'mallory' }, {
        submit: () => new Promise<string>((resolve) => (answer = resolve)),
        cancel: async (runId) => void steps.push(`cancel ${runId}`),
        report: (error) => steps.push(`report ${String(error)}`),
      }).then(
        (runId) => steps.push(`admitted ${runId}`),
        (error: unknown) => steps.push(`refused ${(error as AuthError).code}`),
      ),
    );
    revocations.revoke('mallory');
    answer('run-1');
    await result;
    expect(steps).toEqual(['cancel run-1', 'refused REVOKED']);
    expect(revocations.size).toBe(0);
  });

  it('credentials that expire while the submit is in flight: the submitted run is cancelled (awaited), then TOKEN_EXPIRED', async () => {
    const revocations = new Revocations();
    const steps: string[] = [];
    let now = 1_000;
    let answer!: (runId: string) => void;
    const result = revocations.watching((watch) =>
      submitAdmitted(
        watch,
        { userId: 'alice', expiresAt: 2_000 },
        {
          submit: () => new Promise<string>((resolve) => (answer = resolve)),
          cancel: async (runId) => void steps.push(`cancel ${runId}`),
          report: (error) => steps.push(`report ${String(error)}`),
        },
        () => now,
      ).then(
        (runId) => steps.push(`admitted ${runId}`),
        (error: unknown) => steps.push(`refused ${(error as AuthError).code}`),
      ),
    );
    now = 2_000; // expiresAt is the first instant the credentials are no longer valid
    answer('run-1');
    await result;
    expect(steps).toEqual(['cancel run-1', 'refused TOKEN_EXPIRED']);
    expect(revocations.size).toBe(0);
    // Still valid when the queue answers: admitted, nothing cancelled.
    const served = await revocations.watching((watch) =>
      submitAdmitted(watch, { userId: 'alice', expiresAt: 2_000 }, { submit: async () => 'run-2', cancel: async () => void steps.push('cancel'), report: () => undefined }, () => 1_999),
    );
    expect(served).toBe('run-2');
    expect(steps).toHaveLength(2);
  });

  it('a cancel that fails is reported and the refusal stands', async () => {
    const revocations = new Revocations();
    const reported: unknown[] = [];
    const failure = new Error('redis down');
    const watch = revocations.watch();
    revocations.revoke('mallory');
    const error = await submitAdmitted(watch, { userId: 'mallory' }, {
      submit: async () => 'run-1',
      cancel: () => Promise.reject(failure),
      report: (e) => reported.push(e),
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthError);
    expect((error as AuthError).code).toBe('REVOKED');
    expect(reported).toEqual([failure]);
  });

  it('not revoked (or another user revoked): the run id, no cancel; a submit that fails is thrown as it is', async () => {
    const revocations = new Revocations();
    const cancels: string[] = [];
    const queued = { cancel: async (runId: string) => void cancels.push(runId), report: () => undefined };
    const watch = revocations.watch();
    revocations.revoke('someone-else');
    expect(await submitAdmitted(watch, { userId: 'alice' }, { ...queued, submit: async () => 'run-2' })).toBe('run-2');
    const refusal = new Error('QUEUE_FULL');
    const second = revocations.watch();
    expect(await submitAdmitted(second, { userId: 'alice' }, { ...queued, submit: () => Promise.reject(refusal) }).catch((e: unknown) => e)).toBe(refusal);
    second.end();
    expect(cancels).toEqual([]);
    expect(revocations.size).toBe(0);
  });
});
