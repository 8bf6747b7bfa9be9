/**
 * The revocations every surface's pending requests see (src/gateway/revocations.ts): a request
 * watching since before `revoke(userId)` is refused with `REVOKED`; one that began after, or of
 * another user, is not; what is kept is bounded by the pending requests.
 */
import { describe, expect, it } from 'vitest';
import { AuthError } from '../../src/errors/index.js';
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
