import type { AgentBridge } from '../bridge/agent-bridge.js';
import { RunEmitter } from '../bridge/run-emitter.js';
import type { JsonLimits } from '../events/json.js';
import type { AgentEvent, EventIdentity } from '../events/schema.js';

/**
 * Connects one agent to (at most) one bridge. Every run gets its own `RunEmitter`; events are
 * always observed locally, and delivered through the bridge when one is set. Without a bridge
 * the agent still runs: local observation is then the only consumer, on purpose and visibly.
 */
export class BridgeAdapter {
  private current: AgentBridge | undefined;

  constructor(
    private readonly observe: (event: AgentEvent) => void,
    private readonly validateEvents: boolean,
  ) {}

  get bridge(): AgentBridge | undefined {
    return this.current;
  }

  setBridge(bridge: AgentBridge | undefined): void {
    this.current = bridge;
  }

  /** Registers the run with the bridge (throws `AuthError` for another user's thread) and returns its emitter. */
  openRun(identity: EventIdentity): RunEmitter {
    this.current?.openRun(identity);
    return this.createEmitter(identity);
  }

  /** The run's emitter, without registering the run (the caller does, once its first event is known to be valid). */
  createEmitter(identity: EventIdentity, limits?: Readonly<JsonLimits>): RunEmitter {
    return new RunEmitter(identity, { bridge: this.current, onEvent: this.observe, validate: this.validateEvents, ...(limits && { limits }) });
  }
}
