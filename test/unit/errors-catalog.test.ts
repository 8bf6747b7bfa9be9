import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERRORS_DOC, renderErrorsDoc } from '../../scripts/errors-doc.js';
import * as root from '../../src/index.js';
import { ERROR_CATALOG, errorFromCode, httpStatusOf, isErrorCode, type ErrorCode } from '../../src/index.js';
import { GATEWAY_ERROR_CODES } from '../../src/protocol/constants.js';

const codes = Object.keys(ERROR_CATALOG) as ErrorCode[];

describe('the error catalog', () => {
  it('docs/errors.md is generated from it and up to date (npm run docs:errors)', () => {
    expect(readFileSync(ERRORS_DOC, 'utf8'), 'docs/errors.md is stale: run `npm run docs:errors`').toBe(renderErrorsDoc());
    for (const code of codes) expect(readFileSync(ERRORS_DOC, 'utf8')).toContain(`| \`${code}\` | ${ERROR_CATALOG[code].status} |`);
  });

  it('every owner is an error class of the root entry, and a code read off the wire becomes an instance of its owner', () => {
    const classes = root as unknown as Record<string, abstract new (...args: never[]) => Error>;
    for (const code of codes) {
      const owner = ERROR_CATALOG[code].owner;
      expect(classes[owner], owner).toBeTypeOf('function');
      const error = errorFromCode(code, `message of ${code}`, { details: { tool: 'lookup' } });
      expect(error, code).toBeInstanceOf(classes[owner]);
      expect(error, code).toBeInstanceOf(root.AgentwireError);
      expect(error.constructor.name, code).toBe(owner);
      expect([error.code, error.message, error.status], code).toEqual([code, `message of ${code}`, httpStatusOf(code)]);
    }
  });

  it("a constructor refuses, at run time, a code its class does not own (plain JavaScript), and accepts it in a subclass", () => {
    const untyped = (Class: unknown, ...args: unknown[]) => () => new (Class as new (...a: unknown[]) => Error)(...args);
    expect(untyped(root.ValidationError, 'x', { code: 'TOOL_FAILED' })).toThrow(TypeError);
    expect(untyped(root.ValidationError, 'x', { code: 'TOOL_FAILED' })).toThrow(/ValidationError: "TOOL_FAILED" is not one of its error codes/);
    expect(untyped(root.AuthError, 'x', { code: 'NOT_A_CODE' })).toThrow(TypeError);
    expect(untyped(root.AuthError, 'x', { code: 'toString' })).toThrow(TypeError);
    expect(untyped(root.StateError, 'VALIDATION_FAILED', 'x')).toThrow(TypeError);
    class AppValidationError extends root.ValidationError {}
    expect(new AppValidationError('x', { code: 'INVALID_OPTION' })).toMatchObject({ code: 'INVALID_OPTION', name: 'AppValidationError' });
    expect(new root.AuthError('x', { code: 'THREAD_FORBIDDEN' }).code).toBe('THREAD_FORBIDDEN');
  });

  it('a tool timeout is a ToolError (what `callTool` rejects with for every tool failure), built directly or from its code', () => {
    for (const error of [new root.ToolTimeoutError('lookup', 50), errorFromCode('TOOL_TIMEOUT', 'Tool "lookup" timed out', { details: { tool: 'lookup', timeoutMs: 50 } })]) {
      expect(error).toBeInstanceOf(root.ToolError);
      expect(error).toMatchObject({ name: 'ToolTimeoutError', code: 'TOOL_TIMEOUT', tool: 'lookup', status: 504 });
    }
  });

  it('error frame codes of the gateways are catalog codes', () => {
    for (const code of GATEWAY_ERROR_CODES) expect(isErrorCode(code), code).toBe(true);
    expect(isErrorCode('toString')).toBe(false);
    expect(isErrorCode('NOT_A_CODE')).toBe(false);
  });
});
