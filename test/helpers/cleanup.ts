import { afterEach } from 'vitest';

type Step = () => Promise<void> | void;

/**
 * Steps pushed during a test run after it, newest first (clients close before the servers they
 * use). Call once at the top of a test file.
 */
export function useCleanup(): { push(...steps: Step[]): void } {
  const steps: Step[] = [];
  afterEach(async () => {
    for (const step of steps.splice(0).reverse()) await step();
  });
  return { push: (...added) => void steps.push(...added) };
}
