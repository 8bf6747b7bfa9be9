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
