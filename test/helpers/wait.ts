/**
 * Resolves once `predicate` holds, polling on the event loop every `intervalMs`; throws naming
 * what it waited for after `timeoutMs`. The one polling wait of the test suite.
 */
export async function until(predicate: () => boolean, what = 'condition', timeoutMs = 10_000, intervalMs = 5): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** `until` for a predicate that has to ask a server (CLIENT LIST, a status): polls it, one query at a time. */
export async function untilAsync(predicate: () => Promise<boolean>, what = 'condition', timeoutMs = 10_000, intervalMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
