import { AgentwireError } from './errors.js';

/** The `{name, message, code?}` shape errors take inside events. */
export function serializeError(error: unknown): { name: string; message: string; code?: string } {
  if (error instanceof AgentwireError) return { name: error.name, message: error.message, code: error.code };
  if (error instanceof Error) return { name: error.name || 'Error', message: error.message };
  return { name: 'Error', message: typeof error === 'string' ? error : safeString(error) };
}

function safeString(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
