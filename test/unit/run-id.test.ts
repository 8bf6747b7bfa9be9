import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  MAX_THREAD_ID_LENGTH,
  ValidationError,
  generateRunId,
  isRunId,
  isValidThreadId,
  parseRunId,
} from '../../src/index.js';

const threadChar = fc.constantFrom(...'abcXYZ019_-.:'.split(''));
const threadId = fc.oneof(
  fc.string({ unit: threadChar, minLength: 1, maxLength: MAX_THREAD_ID_LENGTH }),
  // Thread ids that look like run ids or contain the separators.
  fc
    .tuple(fc.string({ unit: threadChar, maxLength: 20 }), fc.string({ unit: threadChar, maxLength: 20 }))
    .map(([a, b]) => `${a}_run_${b}`.slice(0, MAX_THREAD_ID_LENGTH)),
  fc.constantFrom('_', '__', '_run_', 'run', 'thread_x_run_1_abc', 'a_run_1700000000000_ABCDEFGHIJKL', '_run_123_'),
);

describe('run ids', () => {
  it('round-trips every valid thread id exactly, including ones with _ and _run_', () => {
    fc.assert(
      fc.property(threadId, fc.integer({ min: 0, max: 4_102_444_800_000 }), (id, now) => {
        const runId = generateRunId(id, now);
        expect(isRunId(runId)).toBe(true);
        const parsed = parseRunId(runId);
        expect(parsed.threadId).toBe(id);
        expect(parsed.timestamp).toBe(now);
        expect(parsed.unique).toMatch(/^[0-9A-Za-z]{12}$/);
        expect(runId).toBe(`thread_${id}_run_${now}_${parsed.unique}`);
      }),
      { numRuns: 2_000 },
    );
  });

  it('round-trips every valid now, from 0 to the 15-digit maximum, with parseRunId and isRunId', () => {
    fc.assert(
      fc.property(threadId, fc.oneof(fc.integer({ min: 0, max: 999_999_999_999_999 }), fc.constantFrom(0, 1, 999_999_999_999_999)), (id, now) => {
        const runId = generateRunId(id, now);
        expect(isRunId(runId)).toBe(true);
        expect(parseRunId(runId)).toMatchObject({ threadId: id, timestamp: now });
      }),
      { numRuns: 2_000 },
    );
    const current = parseRunId(generateRunId('t')).timestamp;
    expect(Math.abs(current - Date.now())).toBeLessThan(60_000);
  });

  it('refuses a now that is not an integer from 0 to 999,999,999,999,999 (ValidationError INVALID_OPTION naming it)', () => {
    const invalidNow = fc.oneof(
      fc.integer({ max: -1 }),
      fc.double({ noInteger: true }),
      fc.integer({ min: 1_000_000_000_000_000, max: Number.MAX_SAFE_INTEGER }),
      fc.constantFrom(NaN, Infinity, -Infinity, -0.5, 1.5, 1e21, Number.MAX_SAFE_INTEGER + 2),
      fc.constantFrom<unknown>(null, '1700000000000', true, {}, [1], 10n),
    );
    fc.assert(
      fc.property(threadId, invalidNow, (id, now) => {
        let error: unknown;
        try {
          generateRunId(id, now as number);
        } catch (caught) {
          error = caught;
        }
        expect(error).toBeInstanceOf(ValidationError);
        expect((error as ValidationError).code).toBe('INVALID_OPTION');
        expect((error as ValidationError).field).toBe('now');
        expect((error as ValidationError).message).toMatch(/^generateRunId\(\) option now must be an integer from 0 to 999999999999999/);
      }),
      { numRuns: 1_000 },
    );
  });

  it('generates distinct ids for the same thread and millisecond', () => {
    const ids = new Set(Array.from({ length: 10_000 }, () => generateRunId('t', 1)));
    expect(ids.size).toBe(10_000);
  });

  it.each([
    ['empty', ''],
    ['whitespace', '  '],
    ['inner space', 'a b'],
    ['slash', 'a/b'],
    ['newline', 'a\nb'],
    ['unicode', 'thréad'],
    ['too long', 'x'.repeat(MAX_THREAD_ID_LENGTH + 1)],
  ])('rejects an invalid thread id (%s) with a ValidationError naming it', (_label, bad) => {
    expect(isValidThreadId(bad)).toBe(false);
    let error: unknown;
    try {
      generateRunId(bad);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).code).toBe('INVALID_THREAD_ID');
    expect((error as ValidationError).message).toContain(JSON.stringify(bad.slice(0, 80)));
  });

  it('rejects non-strings as thread ids', () => {
    expect(() => generateRunId(42 as unknown as string)).toThrow(ValidationError);
  });

  it.each([
    'run_123',
    'thread__run_1_ABCDEFGHIJKL', // empty thread id
    'thread_a_run_x_ABCDEFGHIJKL', // non-numeric timestamp
    'thread_a_run_1_ABCDEFGHIJK', // unique too short
    'thread_a_run_1_ABCDEFGHIJK_', // unique with _
    'thread_a b_run_1_ABCDEFGHIJKL', // invalid thread id
    'thread_a_run_1_ABCDEFGHIJKL ',
    '',
  ])('parseRunId(%j) throws a ValidationError naming the value', (bad) => {
    expect(isRunId(bad)).toBe(false);
    expect(() => parseRunId(bad)).toThrow(ValidationError);
    expect(() => parseRunId(bad)).toThrow(JSON.stringify(bad));
  });

  it('never parses arbitrary strings into a thread that does not round-trip', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (value) => {
        if (!isRunId(value)) {
          expect(() => parseRunId(value)).toThrow(ValidationError);
          return;
        }
        const { threadId: parsedThread, timestamp, unique } = parseRunId(value);
        expect(`thread_${parsedThread}_run_${timestamp}_${unique}`).toBe(value);
      }),
      { numRuns: 2_000 },
    );
  });
});
