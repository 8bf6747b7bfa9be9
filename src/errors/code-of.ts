import { isErrorCode, type ErrorCode } from './catalog.js';
import { AgentwireError } from './errors.js';
import { isInstance, readField } from './guards.js';

/**
 * The catalog code of a value someone else threw (a hook, a log, an agent), when it is an
 * `AgentwireError` (or of `type`, when given) whose `code` reads as a catalog code; undefined
 * otherwise. Never throws: `instanceof` and the read are guarded (a revoked proxy, a proxy whose
 * getPrototypeOf trap or `code` getter throws give undefined), so a surface that switches on a
 * code cannot fail itself while it handles a failure.
 */
export function agentwireCode(value: unknown, type: { readonly prototype: AgentwireError } = AgentwireError): ErrorCode | undefined {
  if (!isInstance(value, type)) return undefined;
  const code = readField(value, 'code');
  return isErrorCode(code) ? code : undefined;
}
