import { AgentwireError, TransportError, ValidationError } from '../errors/index.js';
import { isInstance } from '../errors/guards.js';
import type { ThreadRegistry } from '../ids/thread-registry.js';
import type { Transport } from '../transport/types.js';

/**
 * A run id is used once. A new run claims its id before its first event: refused when the
 * registry knows a run started under it (active, or finished within the registry's TTL), when another run of this
 * bridge is claiming it right now, or when the transport still retains events of it
 * (`Transport.hasRun`). The claim is synchronous up to the transport's answer, so of two
 * concurrent claims of one id exactly one gets through.
 */
export class RunIds {
  private readonly claiming = new Set<string>();

  constructor(
    private readonly registry: ThreadRegistry,
    private readonly transport: Transport,
  ) {}

  async claim(runId: string): Promise<void> {
    // A run id only registered (a front end checked the thread's owner first) may start its run, once.
    if (this.registry.isUsed(runId) || this.claiming.has(runId)) throw conflict(runId, 'is already in use');
    this.claiming.add(runId);
    if (!this.transport.hasRun) return;
    let retained: boolean;
    try {
      retained = await this.transport.hasRun(runId);
    } catch (error) {
      this.claiming.delete(runId);
      // Unknown is not "free": a run id that cannot be checked is not used.
      throw isInstance(error, AgentwireError) ? error : new TransportError(`Could not check whether run id "${runId}" is in use`, { cause: error });
    }
    if (retained) {
      this.claiming.delete(runId);
      throw conflict(runId, 'has events retained by the transport');
    }
  }

  release(runId: string): void {
    this.claiming.delete(runId);
  }
}

function conflict(runId: string, why: string): ValidationError {
  return new ValidationError(`Run id "${runId}" ${why}: a run id is used once`, { field: 'runId', code: 'RUN_ID_CONFLICT' });
}
