/**
 * `value instanceof type` for a value someone else threw or rejected with: false instead of a
 * TypeError for a value that throws when asked (a revoked proxy, a proxy whose getPrototypeOf trap
 * throws), so the code handling a failure cannot fail itself.
 */
export function isInstance<T>(value: unknown, type: { readonly prototype: T }): value is T {
  try {
    // A class (its constructor may be protected, as AgentwireError's is): instanceof takes it.
    return value instanceof (type as unknown as new () => T);
  } catch {
    return false;
  }
}

/**
 * What the code handling a failure may know about a value someone else threw, each field read
 * once and guarded: a getter that throws (on `code`, `name`, `message`, `retryable`, …), a proxy
 * whose every trap throws, a revoked proxy, a Symbol, `null` all give a result, never a throw.
 * A field is present only when it was readable and of its type (`code` and `name` strings,
 * `retryable` a boolean).
 */
export interface ThrownFields {
  /** `instanceof Error` (false when that check throws). */
  isError: boolean;
  name?: string;
  message?: string;
  code?: string;
  retryable?: boolean;
}

export function readThrown(value: unknown): ThrownFields {
  const fields: ThrownFields = { isError: isInstance(value, Error) };
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return fields;
  const name = readField(value, 'name');
  if (typeof name === 'string') fields.name = name;
  const message = readField(value, 'message');
  if (typeof message === 'string') fields.message = message;
  const code = readField(value, 'code');
  if (typeof code === 'string') fields.code = code;
  const retryable = readField(value, 'retryable');
  if (typeof retryable === 'boolean') fields.retryable = retryable;
  return fields;
}

/** `value[key]`, or undefined when reading it throws. */
export function readField(value: object, key: PropertyKey): unknown {
  try {
    return (value as Record<PropertyKey, unknown>)[key];
  } catch {
    return undefined;
  }
}
