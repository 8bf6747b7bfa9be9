import { AgentwireError } from './errors.js';
import { isInstance, readThrown } from './guards.js';

/**
 * The `{name, message, code?}` shape errors take inside events (unredacted: what leaves the process
 * is `redact.error`'s, see `defaultErrorInfo`). Never throws: each field of the value is read once,
 * guarded (a throwing getter, a proxy whose traps throw give `'Error'`).
 */
export function serializeError(error: unknown): { name: string; message: string; code?: string } {
  const fields = readThrown(error);
  if (fields.isError) {
    const shown = { name: fields.name || 'Error', message: fields.message ?? 'Error' };
    return isInstance(error, AgentwireError) && fields.code !== undefined ? { ...shown, code: fields.code } : shown;
  }
  return { name: 'Error', message: typeof error === 'string' ? error : safeString(error) };
}

function safeString(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    try {
      return String(value);
    } catch {
      return 'Error';
    }
  }
}
