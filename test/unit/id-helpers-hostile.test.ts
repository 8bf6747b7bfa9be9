/**
 * The id helpers and the lifecycle validator answer any value with their result or a typed
 * `ValidationError` (attack 6, f8): `generateRunId(Object.create(null))` and `parseRunId` of it
 * threw `TypeError: Cannot convert object to primitive value` (the message was built with
 * `String(value)`), a value whose `toString` throws passed that error through, and
 * `validateLifecycle(null)` / `validateLifecycle({})` threw `TypeError: events is not iterable`.
 */
import fc from 'fast-check';
import { hostileValue } from '../helpers/hostile-values.js';
import { describe, expect, it } from 'vitest';
import {
  LifecycleChecker,
  ThreadRegistry,
  ThreadResolutionError,
  ValidationError,
  assertThreadId,
  assertUserId,
  generateRunId,
  isRunId,
  isValidThreadId,
  isValidUserId,
  parseRunId,
  validateLifecycle,
} from '../../src/index.js';

const throwing = (what: string) => () => {
  throw new Error(`${what} of the value`);
};
const allTraps: ProxyHandler<object> = Object.fromEntries(
  ['get', 'has', 'ownKeys', 'getPrototypeOf', 'getOwnPropertyDescriptor', 'defineProperty', 'set', 'apply', 'construct'].map((trap) => [trap, throwing(trap)]),
);
function revoked(): object {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy;
}

/** Values built to break whatever converts or reads them. */
const hostile = fc.constantFrom<() => unknown>(
  () => Object.create(null),
  () => ({ toString: throwing('toString') }),
  () => ({ toString: throwing('toString'), valueOf: throwing('valueOf') }),
  () => ({ [Symbol.toPrimitive]: throwing('Symbol.toPrimitive') }),
  () => ({ [Symbol.toPrimitive]: () => ({}) }),
  () => Object.assign(Object.create(null), { [Symbol.iterator]: throwing('Symbol.iterator') }),
  () => ({ [Symbol.iterator]: () => ({ next: throwing('next') }) }),
  () => ({ [Symbol.iterator]: () => null }),
  () => ({ [Symbol.iterator]: () => ({ next: () => 42 }) }),
  () => ({ [Symbol.iterator]: () => ({ next: () => ({ done: false, get value() { throw new Error('value getter'); } }) }) }),
  () => new Proxy({}, allTraps),
  () => new Proxy([], allTraps),
  () => new Proxy(() => undefined, allTraps),
  revoked,
  () => Object.defineProperty({}, 'runId', { get: throwing('runId getter'), enumerable: true }),
  () => ({ type: Symbol('agent_started'), runId: 'r', seq: 1 }),
  () => ({ type: 'agent_started', runId: { toString: throwing('runId.toString') }, seq: 1 }),
  () => ({ type: 'tool_executing', runId: 'r', seq: 2, get data() { throw new Error('data getter'); } }),
  () => Symbol('id'),
  () => 10n,
  () => Object.assign(throwing('call'), { toString: throwing('toString') }),
);

const anything = hostileValue({ stringUnit: 'binary' });
/**
 * Recipes, not values: fast-check inspects what an arbitrary generates (a trap-throwing proxy
 * breaks it), so a hostile value is built inside the property, by calling the recipe.
 */
const made = fc.oneof(anything.map((v) => () => v), hostile);
const value = fc.oneof(
  made,
  fc.array(made, { minLength: 1, maxLength: 4 }).map((makers) => () => makers.map((make) => make())),
);

/** The error `work` threw: what is asserted is that it is the typed one (or nothing at all). */
function thrownBy(work: () => unknown): unknown {
  try {
    work();
    return undefined;
  } catch (error) {
    return error;
  }
}

function onlyValidation(work: () => unknown, codes: readonly string[]): void {
  const error = thrownBy(work);
  if (error === undefined) return;
  expect(error).toBeInstanceOf(ValidationError);
  expect(codes).toContain((error as ValidationError).code);
  expect(typeof (error as ValidationError).message).toBe('string');
}

describe('id helpers and validateLifecycle on hostile values: only ValidationError comes out', () => {
  it('the attacker\'s values get typed errors naming the value by type', () => {
    expect(thrownBy(() => generateRunId(Object.create(null) as string))).toMatchObject({ name: 'ValidationError', code: 'INVALID_THREAD_ID', field: 'threadId' });
    expect(thrownBy(() => generateRunId({ toString: throwing('toString') } as unknown as string))).toMatchObject({ code: 'INVALID_THREAD_ID', message: expect.stringContaining('Invalid thread id object') });
    expect(thrownBy(() => parseRunId(Object.create(null)))).toMatchObject({ name: 'ValidationError', code: 'INVALID_RUN_ID', field: 'runId' });
    expect(thrownBy(() => parseRunId({ toString: throwing('toString') }))).toMatchObject({ code: 'INVALID_RUN_ID', message: expect.stringContaining('Invalid run id object') });
    expect(thrownBy(() => validateLifecycle(null as never))).toMatchObject({ name: 'ValidationError', code: 'VALIDATION_FAILED', field: 'events' });
    expect(thrownBy(() => validateLifecycle({} as never))).toMatchObject({ name: 'ValidationError', code: 'VALIDATION_FAILED', field: 'events' });
    expect(thrownBy(() => validateLifecycle([null] as never))).toMatchObject({ name: 'ValidationError', code: 'INVALID_EVENT', field: 'events[0]' });
    expect(thrownBy(() => validateLifecycle([], null as never))).toMatchObject({ name: 'ValidationError', code: 'INVALID_OPTION' });
    expect(thrownBy(() => validateLifecycle([], { requireComplete: 'yes' } as never))).toMatchObject({ code: 'INVALID_OPTION', field: 'requireComplete' });
    // Well-formed input keeps its answers.
    expect(validateLifecycle([])).toEqual({ ok: true, runs: 0 });
    expect(validateLifecycle([], { requireComplete: false })).toEqual({ ok: true, runs: 0 });
    expect(parseRunId(generateRunId('t_run_1'))).toMatchObject({ threadId: 't_run_1' });
  });

  it('generateRunId, parseRunId, assertThreadId, assertUserId: their result or their own ValidationError code, for any value', () => {
    fc.assert(
      fc.property(value, (make) => {
        const v = make();
        onlyValidation(() => generateRunId(v as string), ['INVALID_THREAD_ID']);
        onlyValidation(() => generateRunId('t', v as number), ['INVALID_OPTION']);
        onlyValidation(() => parseRunId(v), ['INVALID_RUN_ID']);
        onlyValidation(() => assertThreadId(v), ['INVALID_THREAD_ID']);
        onlyValidation(() => assertUserId(v), ['INVALID_USER_ID']);
        expect(typeof isRunId(v)).toBe('boolean');
        expect(typeof isValidThreadId(v)).toBe('boolean');
        expect(typeof isValidUserId(v)).toBe('boolean');
        const resolved = thrownBy(() => new ThreadRegistry().resolve(v as string));
        if (resolved !== undefined) expect(resolved).toBeInstanceOf(ThreadResolutionError);
      }),
      { numRuns: 1_000 },
    );
  });

  it('validateLifecycle and LifecycleChecker.push: a result or a ValidationError, for any events and options', () => {
    fc.assert(
      fc.property(value, value, (makeEvents, makeOptions) => {
        const events = makeEvents();
        const options = makeOptions();
        onlyValidation(() => validateLifecycle(events as never), ['VALIDATION_FAILED', 'INVALID_EVENT']);
        onlyValidation(() => validateLifecycle(events as never, { requireComplete: false }), ['VALIDATION_FAILED', 'INVALID_EVENT']);
        onlyValidation(() => validateLifecycle([], options as never), ['INVALID_OPTION']);
        onlyValidation(() => new LifecycleChecker().push(events as never), ['INVALID_EVENT']);
      }),
      { numRuns: 1_000 },
    );
  });
});
