import { ValidationError } from '../errors/index.js';

/**
 * The `metadata` keys only a run queue sets: on a retry of a lost run (`retryLostRuns` of
 * `BullMQRunQueue`) `agent_started.data.metadata` carries `retryOf` (the lost run's id) and
 * `attempt` (2 for the first retry), the link a client following the thread reads. A submitter's
 * metadata carrying either would announce a retry that never happened, so every submit path
 * (`MemoryRunQueue.submit`, `BullMQRunQueue.submit`, `POST /runs`) refuses it.
 */
export const RESERVED_METADATA_KEYS: readonly string[] = Object.freeze(['retryOf', 'attempt']);

/**
 * Refuses a submitter's metadata that carries a reserved key (`RESERVED_METADATA_KEYS`), whatever
 * its value: `ValidationError` `INVALID_RUN_OPTIONS` (400) with `field` `metadata.<key>`, the
 * code `submit()` refuses any other bad metadata with. `metadata` is what the run will carry (its
 * JSON form), so a `toJSON()` or a getter cannot slip a key past the check.
 */
export function assertSubmitterMetadata(metadata: Record<string, unknown>): void {
  for (const key of RESERVED_METADATA_KEYS) {
    if (Object.hasOwn(metadata, key)) {
      throw new ValidationError(`metadata.${key} is reserved: the run queue sets it on a retry of a lost run (retryLostRuns)`, {
        field: `metadata.${key}`,
        code: 'INVALID_RUN_OPTIONS',
      });
    }
  }
}
